using System.Numerics;
using System.Runtime.CompilerServices;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Kernels;

/// <summary>
/// Rows of one to two vectors (Count ≤ n &lt; 2·Count, e.g. 10 classes at 8 lanes): the whole row
/// lives in two registers, the head vector and the (overlapping) tail vector, so the max, the
/// exponentials and the sum happen in one method with no passes over memory. For such rows the
/// general three-pass loops spend more time on loop set-up than on arithmetic.
/// </summary>
internal static unsafe class ShortRow<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    /// <summary>Whether a row of n ≥ Count elements takes this path.</summary>
    public static bool Fits(nuint n) => n < 2 * (nuint)TVec.Count;

    /// <summary>o = softmax(z) for one short row; o may be exactly z.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Softmax(T* z, T* o, nuint n)
    {
        nuint width = (nuint)TVec.Count;
        TVec head = TVec.Load(z), tail = TVec.Load(z + (n - width));
        TVec max = TVec.Create(TVec.MaxLanes(TVec.Max(head, tail)));
        TVec expHead = VecMath.ExpOfDifference<TVec, T>(head, max);
        TVec expTail = VecMath.ExpOfDifference<TVec, T>(tail, max);
        TVec inverse = TVec.Create(T.One / SumOfBoth(expHead, expTail, n));
        TVec.Store(expHead * inverse, o);
        TVec.Store(expTail * inverse, o + (n - width));
    }

    /// <summary>y = log_softmax(z) = (z − max) − log Σ exp(z − max) for one short row; y may be exactly z.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void LogSoftmax(T* z, T* y, nuint n)
    {
        nuint width = (nuint)TVec.Count;
        TVec head = TVec.Load(z), tail = TVec.Load(z + (n - width));
        TVec max = TVec.Create(TVec.MaxLanes(TVec.Max(head, tail)));
        T sum = SumOfBoth(VecMath.ExpOfDifference<TVec, T>(head, max), VecMath.ExpOfDifference<TVec, T>(tail, max), n);
        TVec logSum = TVec.Create(T.Log(sum));
        TVec.Store((head - max) - logSum, y);
        TVec.Store((tail - max) - logSum, y + (n - width));
    }

    /// <summary>
    /// The statistics a cross-entropy row needs, in one method: returns Σ exp(z − max) and gives
    /// the max and, when <paramref name="wantGaps"/>, Σ w·(max − z) (w = 1 without weights). When
    /// <paramref name="exps"/> is not null, exp(z − max) is stored there (it may be exactly z:
    /// every load happens before the stores).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static T CrossEntropyStatistics(T* z, T* weight, T* exps, bool wantGaps, nuint n, out T max, out T gaps)
    {
        nuint width = (nuint)TVec.Count;
        TVec head = TVec.Load(z), tail = TVec.Load(z + (n - width));
        max = TVec.MaxLanes(TVec.Max(head, tail));
        TVec maxVector = TVec.Create(max);
        gaps = T.Zero;
        if (wantGaps)
        {
            TVec gapHead = maxVector - head, gapTail = maxVector - tail;
            if (weight != null)
            {
                gapHead *= TVec.Load(weight);
                gapTail *= TVec.Load(weight + (n - width));
            }
            gaps = SumOfBoth(gapHead, gapTail, n);
        }
        TVec expHead = VecMath.ExpOfDifference<TVec, T>(head, maxVector);
        TVec expTail = VecMath.ExpOfDifference<TVec, T>(tail, maxVector);
        if (exps != null)
        {
            TVec.Store(expHead, exps);
            TVec.Store(expTail, exps + (n - width));
        }
        return SumOfBoth(expHead, expTail, n);
    }

    /// <summary><c>destination[i] = f(i)</c> over a short row (both vectors computed before either store).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Store<TFunction>(TFunction f, T* destination, nuint n)
        where TFunction : struct, IRowFunction<TVec, T>
    {
        nuint width = (nuint)TVec.Count;
        TVec head = f.Apply(0), tail = f.Apply(n - width);
        TVec.Store(head, destination);
        TVec.Store(tail, destination + (n - width));
    }

    /// <summary>Σ over the row of values held as head and overlapping tail: the tail's lanes that
    /// the head already covers are masked out.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static T SumOfBoth(TVec head, TVec tail, nuint n)
    {
        nuint width = (nuint)TVec.Count;
        TVec beyondHead = TVec.LanesFrom((int)(2 * width - n));
        return TVec.SumLanes(head + TVec.Select(beyondHead, tail, TVec.Create(T.Zero)));
    }
}
