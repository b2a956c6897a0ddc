using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Kernels;

/// <summary>
/// The float64 side of rows across lanes (<see cref="LaneTile{TVec, T}"/>): the per-row scalars
/// of W rows (log S, 1/S, a loss, a gradient's terms) are computed on float64 vectors of the
/// lanes, widened from T and narrowed back by vector conversions.
/// </summary>
/// <remarks>
/// Not lane by lane: a scalar float-to-double conversion merges into its register's previous
/// value, which chained every lane's conversion to the previous lane's division or log (measured:
/// the scalar forms took a third of a 10-class softmax and half of a log_softmax). Four float64
/// lanes per operation (<see cref="FourLanes"/>) rather than two: 65536 × 10 log_softmax 16–24 %
/// less time, softmax 6–19 %, cross-entropy 4–26 % (A/B in one process, avx2, medians of 11).
/// </remarks>
internal static unsafe class LaneWidening<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    /// <summary>Whether the float64 steps take four lanes at a time (<see cref="Vec256{T}"/>) rather than two
    /// (<see cref="Vec128{T}"/>); a one-lane TVec takes <see cref="VecScalar{T}"/>.</summary>
    public static bool FourLanes
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector256.IsHardwareAccelerated && TVec.Count % (typeof(T) == typeof(float) ? 8 : 4) == 0;
    }

    /// <summary>Evaluates <paramref name="formulas"/> on every lane, on the float64 width that
    /// <see cref="FourLanes"/> picks, from the slots at <paramref name="wide"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Apply<TFormulas>(in TFormulas formulas, double* wide)
        where TFormulas : struct, ILaneFormulas
    {
        int width = TVec.Count;
        if (width == 1)
        {
            formulas.Apply<VecScalar<double>>(wide, 0, width);
        }
        else if (FourLanes)
        {
            for (int i = 0; i < width; i += 4)
            {
                formulas.Apply<Vec256<double>>(wide, i, width);
            }
        }
        else
        {
            for (int i = 0; i < width; i += 2)
            {
                formulas.Apply<Vec128<double>>(wide, i, width);
            }
        }
    }

    /// <summary><paramref name="count"/> values of T (a multiple of Count) in float64, from
    /// <paramref name="source"/> into <paramref name="destination"/>: several vectors of lanes in one
    /// loop, which inlines as one call where eight would exhaust a caller's inlining budget.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Widen(T* source, double* destination, int count)
    {
        if (typeof(T) == typeof(double))
        {
            Buffer.MemoryCopy(source, destination, count * sizeof(double), count * sizeof(double));
            return;
        }
        float* f = (float*)source;
        if (TVec.Count == 1)
        {
            for (int i = 0; i < count; i++)
            {
                destination[i] = f[i];
            }
        }
        else if (FourLanes)
        {
            for (int i = 0; i < count; i += 8)
            {
                (Vector256<double> low, Vector256<double> high) = Vector256.Widen(Vector256.Load(f + i));
                low.Store(destination + i);
                high.Store(destination + i + 4);
            }
        }
        else
        {
            for (int i = 0; i < count; i += 4)
            {
                (Vector128<double> low, Vector128<double> high) = Vector128.Widen(Vector128.Load(f + i));
                low.Store(destination + i);
                high.Store(destination + i + 2);
            }
        }
    }

    /// <summary><paramref name="count"/> float64 values (a multiple of Count) rounded to T, from
    /// <paramref name="source"/> into <paramref name="destination"/>, as <see cref="Widen"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Narrow(double* source, T* destination, int count)
    {
        if (typeof(T) == typeof(double))
        {
            Buffer.MemoryCopy(source, destination, count * sizeof(double), count * sizeof(double));
            return;
        }
        float* f = (float*)destination;
        if (TVec.Count == 1)
        {
            for (int i = 0; i < count; i++)
            {
                f[i] = (float)source[i];
            }
        }
        else if (FourLanes)
        {
            for (int i = 0; i < count; i += 8)
            {
                Vector256.Narrow(Vector256.Load(source + i), Vector256.Load(source + i + 4)).Store(f + i);
            }
        }
        else
        {
            for (int i = 0; i < count; i += 4)
            {
                Vector128.Narrow(Vector128.Load(source + i), Vector128.Load(source + i + 2)).Store(f + i);
            }
        }
    }

    /// <summary>float64 lanes i … i + TD.Count − 1 as a vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TD Wide<TD>(ref T lanes, int i)
        where TD : struct, IVec<TD, double>
    {
        ref double d = ref Unsafe.As<T, double>(ref lanes);
        return typeof(TD) == typeof(Vec256<double>)
            ? As<Vector256<double>, TD>(Vector256.LoadUnsafe(ref d, (nuint)i))
            : As<Vector128<double>, TD>(Vector128.LoadUnsafe(ref d, (nuint)i));
    }

    /// <summary>float32 lanes i … i + 2·TD.Count − 1 widened to float64 by a vector conversion, in two vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (TD Low, TD High) Widened<TD>(ref float lanes, int i)
        where TD : struct, IVec<TD, double>
    {
        if (typeof(TD) == typeof(Vec256<double>))
        {
            (Vector256<double> low, Vector256<double> high) = Vector256.Widen(Vector256.LoadUnsafe(ref lanes, (nuint)i));
            return (As<Vector256<double>, TD>(low), As<Vector256<double>, TD>(high));
        }
        (Vector128<double> low128, Vector128<double> high128) = Vector128.Widen(Vector128.LoadUnsafe(ref lanes, (nuint)i));
        return (As<Vector128<double>, TD>(low128), As<Vector128<double>, TD>(high128));
    }

    /// <summary>A Vector128 or Vector256 of float64 as the width that wraps it (Vec128 and Vec256 are
    /// their vector and nothing else); called only with the matching <typeparamref name="TD"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TD As<TVector, TD>(TVector vector)
        where TVector : struct
        where TD : struct => Unsafe.As<TVector, TD>(ref vector);

    /// <summary>The Count float64 values at <paramref name="wide"/> rounded to T, as a vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Narrowed(double* wide)
    {
        TVec result = default;
        Narrow(wide, (T*)Unsafe.AsPointer(ref result), TVec.Count);
        return result;
    }
}
