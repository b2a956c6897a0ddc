using System.Diagnostics;
using System.Runtime.CompilerServices;
using NativeSoftmax.Kernels;

namespace NativeSoftmax.Simd;

/// <summary>
/// Rows of a 16-bit format <typeparamref name="TFormat"/> widened to float32 and float32 narrowed
/// to it, at a width of <see cref="IWordVec{TSelf}"/>: steps of <c>TWords.Step</c> elements, the
/// last one overlapping the one before (each element is converted from memory the conversion does
/// not write, so converting it twice gives the same bits); rows shorter than a step go one element
/// at a time. Nothing outside the row's n elements is read or written.
/// </summary>
internal static unsafe class HalfConversion<TFormat>
    where TFormat : struct, IHalfFormat
{
    /// <summary>n 16-bit values to float32, exactly.</summary>
    public static void Widen<TWords>(ushort* source, float* destination, nuint n)
        where TWords : struct, IWordVec<TWords>
    {
        nuint step = (nuint)TWords.Step;
        if (n < step)
        {
            WidenSteps<WordScalar>(source, destination, n, 1);
            return;
        }
        WidenSteps<TWords>(source, destination, n, step);
    }

    /// <summary>n float32 to the nearest 16-bit values (ties to even), subnormal results kept.</summary>
    public static void Narrow<TWords>(float* source, ushort* destination, nuint n)
        where TWords : struct, IWordVec<TWords> =>
        NarrowRow<TWords, Exact>(source, destination, n);

    /// <summary>
    /// n float32 outputs to the nearest 16-bit values (ties to even), then the library's flush
    /// rule for the 16-bit type: a result below its smallest normal number is stored as 0 of the
    /// same sign (<see cref="IHalfFormat.NarrowFlushed"/>; the source follows float32's flush
    /// rule, as every float32 output of the library does).
    /// </summary>
    public static void NarrowFlushed<TWords>(float* source, ushort* destination, nuint n)
        where TWords : struct, IWordVec<TWords> =>
        NarrowRow<TWords, Flushed>(source, destination, n);

    private static void NarrowRow<TWords, TFlush>(float* source, ushort* destination, nuint n)
        where TWords : struct, IWordVec<TWords>
        where TFlush : struct, IFlush
    {
        nuint step = (nuint)TWords.Step;
        if (n < step)
        {
            NarrowSteps<WordScalar, TFlush>(source, destination, n, 1);
            return;
        }
        NarrowSteps<TWords, TFlush>(source, destination, n, step);
    }

    // The step loops are compiled once per width (NoInlining) and convert at one call site, the
    // last step clamped to end at n: one inlined copy of the format's conversion per loop, which
    // keeps float16's longer narrowing within the inliner's budget (two copies left it a call).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void WidenSteps<TWords>(ushort* source, float* destination, nuint n, nuint step)
        where TWords : struct, IWordVec<TWords>
    {
        for (nuint i = 0; i < n; i += step)
        {
            nuint at = Math.Min(i, n - step);
            WidenStep<TWords>(source + at, destination + at);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WidenStep<TWords>(ushort* source, float* destination)
        where TWords : struct, IWordVec<TWords>
    {
        TWords.LoadWidening(source, out TWords lower, out TWords upper);
        TWords.StoreSingles(TFormat.Widen(lower), TFormat.Widen(upper), destination);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void NarrowSteps<TWords, TFlush>(float* source, ushort* destination, nuint n, nuint step)
        where TWords : struct, IWordVec<TWords>
        where TFlush : struct, IFlush
    {
        for (nuint i = 0; i < n; i += step)
        {
            nuint at = Math.Min(i, n - step);
            NarrowStep<TWords, TFlush>(source + at, destination + at);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void NarrowStep<TWords, TFlush>(float* source, ushort* destination)
        where TWords : struct, IWordVec<TWords>
        where TFlush : struct, IFlush
    {
        TWords.LoadSingles(source, out TWords lower, out TWords upper);
        TWords.StoreNarrowing(NarrowOne<TWords, TFlush>(lower), NarrowOne<TWords, TFlush>(upper), destination);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TWords NarrowOne<TWords, TFlush>(TWords single)
        where TWords : struct, IWordVec<TWords>
        where TFlush : struct, IFlush =>
        TFlush.Flushes ? TFormat.NarrowFlushed(single) : TFormat.Narrow(single);

    private interface IFlush
    {
        static abstract bool Flushes { get; }
    }

    private readonly struct Exact : IFlush
    {
        public static bool Flushes => false;
    }

    private readonly struct Flushed : IFlush
    {
        public static bool Flushes => true;
    }

    /// <summary>
    /// Stores <paramref name="function"/>(i) for i in [0, n), each flushed as a float32 store of
    /// the row function is (<see cref="VecMath.Flush{TVec, T, TFunction}"/>), then narrowed as
    /// <see cref="NarrowFlushed{TWords}"/>: the float32 output pass and its narrowing in one loop,
    /// the float32 values never stored, the same bits. <typeparamref name="TWords"/> is the
    /// conversion width of <typeparamref name="TVec"/>: a step is two of its vectors (one element
    /// for <see cref="VecScalar{T}"/>), and n is at least a step (the chunks of a long row). The
    /// last step overlaps the one before, so the function must read memory that
    /// <paramref name="destination"/> does not overlap.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void StoreNarrowed<TVec, TWords, TFunction>(in TFunction function, ushort* destination, nuint n)
        where TVec : struct, IVec<TVec, float>
        where TWords : struct, IWordVec<TWords>
        where TFunction : struct, IRowFunction<TVec, float>
    {
        nuint step = (nuint)TWords.Step, width = (nuint)TVec.Count;
        Debug.Assert((step == 2 * width || step == width) && n >= step, "a step of two vectors (one scalar) of the kernels' width, and at least one step");
        TFunction f = function; // a copy in registers: through the reference, every store could alias it
        for (nuint i = 0; i < n; i += step)
        {
            nuint at = Math.Min(i, n - step);
            TWords lower = Unsafe.BitCast<TVec, TWords>(VecMath.Flush<TVec, float, TFunction>(f.Apply(at)));
            TWords upper = step == width ? lower : Unsafe.BitCast<TVec, TWords>(VecMath.Flush<TVec, float, TFunction>(f.Apply(at + width)));
            TWords.StoreNarrowing(TFormat.NarrowFlushed(lower), TFormat.NarrowFlushed(upper), destination + at);
        }
    }

    /// <summary><see cref="Widen{TWords}"/> at the conversion width that matches the kernels' width
    /// <typeparamref name="TVec"/> (one element at a time for <see cref="VecScalar{T}"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WidenAt<TVec>(ushort* source, float* destination, nuint n)
        where TVec : struct, IVec<TVec, float>
    {
        if (typeof(TVec) == typeof(Vec512<float>))
        {
            Widen<Words512>(source, destination, n);
        }
        else if (typeof(TVec) == typeof(Vec256<float>))
        {
            Widen<Words256>(source, destination, n);
        }
        else if (typeof(TVec) == typeof(Vec128<float>))
        {
            Widen<Words128>(source, destination, n);
        }
        else
        {
            Widen<WordScalar>(source, destination, n);
        }
    }

    /// <summary><see cref="StoreNarrowed{TVec, TWords, TFunction}"/> at the conversion width that matches <typeparamref name="TVec"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StoreNarrowedAt<TVec, TFunction>(in TFunction f, ushort* destination, nuint n)
        where TVec : struct, IVec<TVec, float>
        where TFunction : struct, IRowFunction<TVec, float>
    {
        if (typeof(TVec) == typeof(Vec512<float>))
        {
            StoreNarrowed<TVec, Words512, TFunction>(f, destination, n);
        }
        else if (typeof(TVec) == typeof(Vec256<float>))
        {
            StoreNarrowed<TVec, Words256, TFunction>(f, destination, n);
        }
        else if (typeof(TVec) == typeof(Vec128<float>))
        {
            StoreNarrowed<TVec, Words128, TFunction>(f, destination, n);
        }
        else
        {
            StoreNarrowed<TVec, WordScalar, TFunction>(f, destination, n);
        }
    }

    /// <summary><see cref="NarrowFlushed{TWords}"/> at the conversion width that matches <typeparamref name="TVec"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void NarrowFlushedAt<TVec>(float* source, ushort* destination, nuint n)
        where TVec : struct, IVec<TVec, float>
    {
        if (typeof(TVec) == typeof(Vec512<float>))
        {
            NarrowFlushed<Words512>(source, destination, n);
        }
        else if (typeof(TVec) == typeof(Vec256<float>))
        {
            NarrowFlushed<Words256>(source, destination, n);
        }
        else if (typeof(TVec) == typeof(Vec128<float>))
        {
            NarrowFlushed<Words128>(source, destination, n);
        }
        else
        {
            NarrowFlushed<WordScalar>(source, destination, n);
        }
    }
}
