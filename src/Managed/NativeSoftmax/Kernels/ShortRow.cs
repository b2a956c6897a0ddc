using System.Numerics;
using System.Runtime.CompilerServices;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Kernels;

/// <summary>
/// The loops of <see cref="IRowLoop{TVec, T}"/> for rows of one to two vectors
/// (Count ≤ n &lt; 2·Count, e.g. 10 classes at 8 lanes): each is the head vector and the
/// (overlapping) tail vector, with no loop. Every method inlines, so a kernel over short rows
/// compiles into one method per row operation: for such rows the general loops spend more time
/// on calls and loop set-up than on arithmetic.
/// </summary>
internal readonly unsafe struct ShortRow<TVec, T> : IRowLoop<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    /// <summary>Whether a row of n ≥ Count elements takes this path.</summary>
    public static bool Fits(nuint n) => n < 2 * (nuint)TVec.Count;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Max(T* x, nuint n) =>
        TVec.MaxLanes(TVec.Max(TVec.Load(x), TVec.Load(x + (n - (nuint)TVec.Count))));

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store<TFunction>(in TFunction f, T* destination, nuint n)
        where TFunction : struct, IRowFunction<TVec, T>
    {
        nuint tailStart = n - (nuint)TVec.Count;
        TVec head = f.Apply(0), tail = f.Apply(tailStart); // both before either store
        TVec.Store(VecMath.Flush<TVec, T, TFunction>(head), destination);
        TVec.Store(VecMath.Flush<TVec, T, TFunction>(tail), destination + tailStart);
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Sum<TFunction>(in TFunction f, nuint n)
        where TFunction : struct, IRowFunction<TVec, T> =>
        double.CreateTruncating(SumOfBoth(f.Apply(0), f.Apply(n - (nuint)TVec.Count), n));

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ExpSum SumExps<TFunction>(in TFunction f, T* storeTo, nuint n)
        where TFunction : struct, IRowFunction<TVec, T>
    {
        nuint tailStart = n - (nuint)TVec.Count;
        TVec head = f.Apply(0), tail = f.Apply(tailStart);
        if (storeTo != null)
        {
            TVec.Store(head, storeTo);
            TVec.Store(tail, storeTo + tailStart);
        }
        TVec zero = TVec.Create(T.Zero), one = TVec.Create(T.One);
        TVec headIsOne = TVec.EqualTo(head, one);
        TVec tailIsOne = TVec.Select(BeyondHead(n), TVec.EqualTo(tail, one), zero);
        T others = SumOfBoth(TVec.Select(headIsOne, zero, head), TVec.Select(tailIsOne, zero, tail), n);
        int atMax = TVec.CountTrue(headIsOne) + TVec.CountTrue(tailIsOne);
        return new ExpSum(double.CreateTruncating(others), atMax);
    }

    /// <summary>Σ over the row of values held as head and overlapping tail: the tail's lanes that
    /// the head already covers are masked out.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static T SumOfBoth(TVec head, TVec tail, nuint n) =>
        TVec.SumLanes(head + TVec.Select(BeyondHead(n), tail, TVec.Create(T.Zero)));

    /// <summary>The tail's lanes that the head does not cover.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec BeyondHead(nuint n) => TVec.LanesFrom((int)(2 * (nuint)TVec.Count - n));
}
