using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace NativeSoftmax.Simd;

/// <summary>The 256-bit width: a thin wrapper over <see cref="Vector256{T}"/>.</summary>
internal readonly struct Vec256<T> : IVec<Vec256<T>, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    private readonly Vector256<T> _v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Vec256(Vector256<T> v) => _v = v;

    public static int Count => Vector256<T>.Count;
    public static bool IsHardwareAccelerated => Vector256.IsHardwareAccelerated;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256<T> Create(T value) => new(Vector256.Create(value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vec256<T> Load(T* source) => new(Vector256.Load(source));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Store(Vec256<T> value, T* destination) => value._v.Store(destination);

    /// <remarks>With AVX: float32 8 × 8 by unpacks within 128-bit lanes, then shuffles, then 128-bit
    /// permutes (24 shuffles); float64 4 × 4 by unpacks and 128-bit permutes (8).</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Transpose(T* source, nint sourceStride, T* destination, nint destinationStride)
    {
        if (!Avx.IsSupported)
        {
            VecMath.TransposeLanes<Vec256<T>, T>(source, sourceStride, destination, destinationStride);
        }
        else if (typeof(T) == typeof(float))
        {
            float* s = (float*)source, d = (float*)destination;
            Vector256<float> t0 = Avx.UnpackLow(Avx.LoadVector256(s), Avx.LoadVector256(s + sourceStride));
            Vector256<float> t1 = Avx.UnpackHigh(Avx.LoadVector256(s), Avx.LoadVector256(s + sourceStride));
            Vector256<float> t2 = Avx.UnpackLow(Avx.LoadVector256(s + 2 * sourceStride), Avx.LoadVector256(s + 3 * sourceStride));
            Vector256<float> t3 = Avx.UnpackHigh(Avx.LoadVector256(s + 2 * sourceStride), Avx.LoadVector256(s + 3 * sourceStride));
            Vector256<float> t4 = Avx.UnpackLow(Avx.LoadVector256(s + 4 * sourceStride), Avx.LoadVector256(s + 5 * sourceStride));
            Vector256<float> t5 = Avx.UnpackHigh(Avx.LoadVector256(s + 4 * sourceStride), Avx.LoadVector256(s + 5 * sourceStride));
            Vector256<float> t6 = Avx.UnpackLow(Avx.LoadVector256(s + 6 * sourceStride), Avx.LoadVector256(s + 7 * sourceStride));
            Vector256<float> t7 = Avx.UnpackHigh(Avx.LoadVector256(s + 6 * sourceStride), Avx.LoadVector256(s + 7 * sourceStride));
            // Per 128-bit lane: columns k (k+4) of rows 0–3 and of rows 4–7.
            Vector256<float> c0 = Avx.Shuffle(t0, t2, 0x44), c1 = Avx.Shuffle(t0, t2, 0xEE);
            Vector256<float> c2 = Avx.Shuffle(t1, t3, 0x44), c3 = Avx.Shuffle(t1, t3, 0xEE);
            Vector256<float> c4 = Avx.Shuffle(t4, t6, 0x44), c5 = Avx.Shuffle(t4, t6, 0xEE);
            Vector256<float> c6 = Avx.Shuffle(t5, t7, 0x44), c7 = Avx.Shuffle(t5, t7, 0xEE);
            Avx.Store(d, Avx.Permute2x128(c0, c4, 0x20));
            Avx.Store(d + destinationStride, Avx.Permute2x128(c1, c5, 0x20));
            Avx.Store(d + 2 * destinationStride, Avx.Permute2x128(c2, c6, 0x20));
            Avx.Store(d + 3 * destinationStride, Avx.Permute2x128(c3, c7, 0x20));
            Avx.Store(d + 4 * destinationStride, Avx.Permute2x128(c0, c4, 0x31));
            Avx.Store(d + 5 * destinationStride, Avx.Permute2x128(c1, c5, 0x31));
            Avx.Store(d + 6 * destinationStride, Avx.Permute2x128(c2, c6, 0x31));
            Avx.Store(d + 7 * destinationStride, Avx.Permute2x128(c3, c7, 0x31));
        }
        else
        {
            double* s = (double*)source, d = (double*)destination;
            Vector256<double> r0 = Avx.LoadVector256(s), r1 = Avx.LoadVector256(s + sourceStride);
            Vector256<double> r2 = Avx.LoadVector256(s + 2 * sourceStride), r3 = Avx.LoadVector256(s + 3 * sourceStride);
            Vector256<double> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1);
            Vector256<double> t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);
            Avx.Store(d, Avx.Permute2x128(t0, t2, 0x20));
            Avx.Store(d + destinationStride, Avx.Permute2x128(t1, t3, 0x20));
            Avx.Store(d + 2 * destinationStride, Avx.Permute2x128(t0, t2, 0x31));
            Avx.Store(d + 3 * destinationStride, Avx.Permute2x128(t1, t3, 0x31));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256<T> operator +(Vec256<T> left, Vec256<T> right) => new(left._v + right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256<T> operator -(Vec256<T> left, Vec256<T> right) => new(left._v - right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256<T> operator *(Vec256<T> left, Vec256<T> right) => new(left._v * right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256<T> operator /(Vec256<T> left, Vec256<T> right) => new(left._v / right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256<T> MultiplyAdd(Vec256<T> a, Vec256<T> b, Vec256<T> c)
    {
        if (typeof(T) == typeof(float))
        {
            return new(Vector256.MultiplyAddEstimate(a._v.AsSingle(), b._v.AsSingle(), c._v.AsSingle()).As<float, T>());
        }
        return new(Vector256.MultiplyAddEstimate(a._v.AsDouble(), b._v.AsDouble(), c._v.AsDouble()).As<double, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256<T> Max(Vec256<T> left, Vec256<T> right) => new(Vector256.MaxNative(left._v, right._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256<T> LessThan(Vec256<T> left, Vec256<T> right) => new(Vector256.LessThan(left._v, right._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256<T> EqualTo(Vec256<T> left, Vec256<T> right) => new(Vector256.Equals(left._v, right._v));

    /// <remarks>Every mask is a comparison's (each lane all-ones or zero), so a blend on the lane's
    /// sign bit is the same select in one instruction; the JIT's ConditionalSelect is three (and, and-not, or).</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256<T> Select(Vec256<T> mask, Vec256<T> ifTrue, Vec256<T> ifFalse)
    {
        if (Avx.IsSupported)
        {
            return typeof(T) == typeof(float)
                ? new(Avx.BlendVariable(ifFalse._v.AsSingle(), ifTrue._v.AsSingle(), mask._v.AsSingle()).As<float, T>())
                : new(Avx.BlendVariable(ifFalse._v.AsDouble(), ifTrue._v.AsDouble(), mask._v.AsDouble()).As<double, T>());
        }
        return new(Vector256.ConditionalSelect(mask._v, ifTrue._v, ifFalse._v));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256<T> LanesFrom(int firstLane) =>
        new(Vector256.GreaterThanOrEqual(Vector256<T>.Indices, Vector256.Create(T.CreateTruncating(firstLane))));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256<T> FlushSubnormal(Vec256<T> value)
    {
        Vector256<T> tiny = Vector256.LessThan(Vector256.Abs(value._v), Vector256.Create(VecMath.MinNormal<T>()));
        return new(Vector256.AndNot(value._v, tiny));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256<T> Pow2FromShifted(Vec256<T> shifted)
    {
        if (typeof(T) == typeof(float))
        {
            Vector256<int> bits = shifted._v.AsInt32() + Vector256.Create(VecMath.SingleExponentBias);
            return new(Vector256.ShiftLeft(bits, VecMath.SingleMantissaBits).As<int, T>());
        }
        Vector256<long> wide = shifted._v.AsInt64() + Vector256.Create(VecMath.DoubleExponentBias);
        return new(Vector256.ShiftLeft(wide, VecMath.DoubleMantissaBits).As<long, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec256<T> Significand(Vec256<T> value, out Vec256<T> exponent)
    {
        if (typeof(T) == typeof(float))
        {
            Vector256<int> bits = value._v.AsInt32();
            Vector256<int> field = Vector256.ShiftRightLogical(bits, VecMath.SingleMantissaBits) | Vector256.Create(VecMath.SingleTwoToMantissaBits);
            exponent = new((field.AsSingle() - Vector256.Create(VecMath.SingleExponentOffset)).As<float, T>());
            return new(((bits & Vector256.Create(VecMath.SingleMantissaMask)) | Vector256.Create(VecMath.SingleOne)).As<int, T>());
        }
        Vector256<long> wide = value._v.AsInt64();
        Vector256<long> wideField = Vector256.ShiftRightLogical(wide, VecMath.DoubleMantissaBits) | Vector256.Create(VecMath.DoubleTwoToMantissaBits);
        exponent = new((wideField.AsDouble() - Vector256.Create(VecMath.DoubleExponentOffset)).As<double, T>());
        return new(((wide & Vector256.Create(VecMath.DoubleMantissaMask)) | Vector256.Create(VecMath.DoubleOne)).As<long, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int CountTrue(Vec256<T> mask) => BitOperations.PopCount(Vector256.ExtractMostSignificantBits(mask._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T SumLanes(Vec256<T> value) => Vector256.Sum(value._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T MaxLanes(Vec256<T> value) =>
        Vec128<T>.MaxLanes(Vec128<T>.FromVector(Vector128.MaxNative(value._v.GetLower(), value._v.GetUpper())));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vec256<T> FromVector(Vector256<T> v) => new(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<T> AsVector(Vec256<T> value) => value._v;
}
