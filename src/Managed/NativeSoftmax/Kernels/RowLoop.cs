using System.Numerics;
using System.Runtime.CompilerServices;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Kernels;

/// <summary>
/// The loops of <see cref="IRowLoop{TVec, T}"/> for rows of any length n ≥ <c>TVec.Count</c>
/// (the width dispatch guarantees it; shorter rows use the one-lane width).
/// </summary>
/// <remarks>
/// Tails: the last, partial vector is handled by evaluating the function on the final full
/// vector <c>[n − Count, n)</c>, which overlaps elements already done (only when Count does not
/// divide n). Stores of it write the same
/// values again; sums mask the overlapping lanes out. The tail is evaluated before the main loop
/// stores anything, so an output that is exactly its input (in place) still reads original
/// values. Nothing outside <c>[0, n)</c> is ever read or written.
/// </remarks>
internal readonly unsafe struct RowLoop<TVec, T> : IRowLoop<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    // Each loop evaluates f at exactly two call sites, the tail and the loop body: every call site
    // inlines the whole kernel (exp included), and more copies exhaust the JIT's inlining budget,
    // which then leaves calls to the vector operators inside the loop (seen in the disassembly).
    // Sums keep four independent partial sums, rotated each step, flushed to float64 by blocks.

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.NoInlining)] // one compilation unit per loop, so each gets the full inlining budget for its kernel
    public static void Store<TFunction>(in TFunction function, T* destination, nuint n)
        where TFunction : struct, IRowFunction<TVec, T>
    {
        TFunction f = function; // a copy in registers: through the reference, every store could alias it
        nuint width = (nuint)TVec.Count;
        bool partial = n % width != 0;
        TVec last = partial ? VecMath.Flush<TVec, T, TFunction>(f.Apply(n - width)) : default;
        for (nuint i = 0; i + width <= n; i += width)
        {
            TVec.Store(VecMath.Flush<TVec, T, TFunction>(f.Apply(i)), destination + i);
        }
        if (partial)
        {
            TVec.Store(last, destination + (n - width));
        }
    }

    /// <summary>Vectors summed in the working precision before their total moves to float64.</summary>
    private const int BlockVectors = 32;

    /// <summary>
    /// Σ f(i) over [0, n). Within a block of 32 vectors four partial sums per lane take turns
    /// (each adds 8 values); each block's total is then added in float64. So the rounding error
    /// of a float32 sum stays a few ulp however long the row (one float accumulator per lane
    /// would lose |n/lanes|·2^−24 relative: 1.6e-6 at 262144 classes on 128-bit vectors).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static double Sum<TFunction>(in TFunction function, nuint n)
        where TFunction : struct, IRowFunction<TVec, T>
    {
        TFunction f = function; // a copy in registers: through the reference, every store could alias it
        nuint width = (nuint)TVec.Count;
        TVec zero = TVec.Create(T.Zero);
        nuint full = n - n % width;
        double total = full < n
            ? double.CreateTruncating(TVec.SumLanes(TVec.Select(TVec.LanesFrom((int)(full + width - n)), f.Apply(n - width), zero)))
            : 0.0;
        for (nuint i = 0; i < full;)
        {
            nuint blockEnd = Math.Min(full, i + BlockVectors * width);
            TVec s0 = zero, s1 = zero, s2 = zero, s3 = zero;
            for (; i < blockEnd; i += width)
            {
                TVec next = s0 + f.Apply(i);
                s0 = s1;
                s1 = s2;
                s2 = s3;
                s3 = next;
            }
            total += double.CreateTruncating(TVec.SumLanes((s0 + s1) + (s2 + s3)));
        }
        return total;
    }

    /// <summary>Vectors one accumulator adds in <see cref="SumExps"/> before its sum joins the block's
    /// (four sub-blocks of 8 make a block of <see cref="BlockVectors"/>, added as (s0 + s1) + (s2 + s3)):
    /// the same 8 additions per partial sum as <see cref="Sum"/>'s rotating partial sums, without the
    /// register moves of the rotation (the exponential is long enough to hide one add's latency).</summary>
    private const int SubBlockVectors = 8;

    /// <summary>The total below which <see cref="SumExps"/> splits off the exponentials equal to 1.</summary>
    /// <remarks>At S ≥ 2, S − 1 ≥ S/2, so S − 1 = Total − 1 (and log S, 1 − o_max) keep the relative
    /// accuracy of the total itself; only below can a dominant class's tiny others drown in the 1s.</remarks>
    public const double SplitBelow = 2.0;

    /// <inheritdoc/>
    /// <remarks>The loop only sums (and stores, with a destination); when the total is below
    /// <see cref="SplitBelow"/> a second pass splits it: over the stored values when there are
    /// any, else over f again (rare: a row whose maximum dominates). A total of at least
    /// <see cref="SplitBelow"/> comes back as (Total − 1, 1), the same bits with stores and
    /// without (log_softmax out of place and in place).</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] // only picks one of the loops below
    public static ExpSum SumExps<TFunction>(in TFunction f, T* storeTo, nuint n)
        where TFunction : struct, IRowFunction<TVec, T>
    {
        if (storeTo == null)
        {
            double all = Total<TFunction, WithoutStores>(f, null, n);
            return all >= SplitBelow ? new ExpSum(all - 1, 1) : Split(f, n);
        }
        double total = Total<TFunction, WithStores>(f, storeTo, n);
        return total >= SplitBelow ? new ExpSum(total - 1, 1) : Split(new Elements<TVec, T>(storeTo), n);
    }

    /// <summary>The two parts of Σ f over [0, n) (<see cref="ExpSum"/>), summed by blocks of
    /// sub-blocks as <see cref="Total"/>, with a lane count beside the sum for the values that are exactly 1.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ExpSum Split<TFunction>(in TFunction function, nuint n)
        where TFunction : struct, IRowFunction<TVec, T>
    {
        TFunction f = function; // a copy in registers: through the reference, every store could alias it
        nuint width = (nuint)TVec.Count;
        TVec zero = TVec.Create(T.Zero), one = TVec.Create(T.One);
        nuint full = n - n % width;
        double others = 0, atMax = 0;
        if (full < n)
        {
            AddTail(f.Apply(n - width), (int)(full + width - n), ref others, ref atMax);
        }
        for (nuint i = 0; i < full;)
        {
            nuint blockEnd = Math.Min(full, i + BlockVectors * width);
            TVec pairs = zero, half = zero, ones = zero;
            for (int k = 0; i < blockEnd; k++)
            {
                nuint subEnd = Math.Min(blockEnd, i + SubBlockVectors * width);
                TVec s = zero;
                for (; i < subEnd; i += width)
                {
                    TVec value = f.Apply(i);
                    TVec isOne = TVec.EqualTo(value, one);
                    s += TVec.Select(isOne, zero, value);
                    ones += TVec.Select(isOne, one, zero);
                }
                if ((k & 1) == 0)
                {
                    half = s;
                }
                else
                {
                    pairs += half + s;
                    half = zero;
                }
            }
            others += double.CreateTruncating(TVec.SumLanes(pairs + half));
            atMax += double.CreateTruncating(TVec.SumLanes(ones));
        }
        return new ExpSum(others, atMax);
    }

    /// <summary>Whether <see cref="Total"/> stores what it sums: a type argument, so that each
    /// compiled loop has the stores or not, with no test inside it.</summary>
    private interface IStores
    {
        static abstract bool Stores { get; }
    }

    private readonly struct WithStores : IStores
    {
        public static bool Stores => true;
    }

    private readonly struct WithoutStores : IStores
    {
        public static bool Stores => false;
    }

    /// <summary>Σ f over [0, n), storing f to <paramref name="destination"/> when
    /// <typeparamref name="TStores"/> says so: by blocks of <see cref="BlockVectors"/>, each the
    /// pairwise sum of sub-blocks of <see cref="SubBlockVectors"/>, block totals in float64.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static double Total<TFunction, TStores>(in TFunction function, T* destination, nuint n)
        where TFunction : struct, IRowFunction<TVec, T>
        where TStores : struct, IStores
    {
        TFunction f = function; // a copy in registers: through the reference, every store could alias it
        nuint width = (nuint)TVec.Count;
        TVec zero = TVec.Create(T.Zero);
        nuint full = n - n % width;
        TVec last = full < n ? f.Apply(n - width) : zero;
        double total = full < n
            ? double.CreateTruncating(TVec.SumLanes(TVec.Select(TVec.LanesFrom((int)(full + width - n)), last, zero)))
            : 0.0;
        for (nuint i = 0; i < full;)
        {
            nuint blockEnd = Math.Min(full, i + BlockVectors * width);
            TVec pairs = zero, half = zero;
            for (int k = 0; i < blockEnd; k++)
            {
                nuint subEnd = Math.Min(blockEnd, i + SubBlockVectors * width);
                TVec s = zero;
                for (; i < subEnd; i += width)
                {
                    TVec value = f.Apply(i);
                    if (TStores.Stores)
                    {
                        TVec.Store(value, destination + i);
                    }
                    s += value;
                }
                if ((k & 1) == 0)
                {
                    half = s;
                }
                else
                {
                    pairs += half + s;
                    half = zero;
                }
            }
            total += double.CreateTruncating(TVec.SumLanes(pairs + half));
        }
        if (TStores.Stores && full < n)
        {
            TVec.Store(last, destination + (n - width));
        }
        return total;
    }

    /// <summary>Adds the lanes <c>firstLane …</c> of the tail vector (those the full vectors do not cover) to the two parts of an <see cref="ExpSum"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddTail(TVec tail, int firstLane, ref double others, ref double atMax)
    {
        TVec zero = TVec.Create(T.Zero), one = TVec.Create(T.One);
        TVec isNew = TVec.LanesFrom(firstLane);
        TVec isOne = TVec.Select(isNew, TVec.EqualTo(tail, one), zero);
        others += double.CreateTruncating(TVec.SumLanes(TVec.Select(isNew, TVec.Select(isOne, zero, tail), zero)));
        atMax += TVec.CountTrue(isOne);
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.NoInlining)] // one compilation unit per loop, so each gets the full inlining budget for its kernel
    public static T Max(T* x, nuint n)
    {
        nuint width = (nuint)TVec.Count;
        TVec m0 = TVec.Load(x + (n - width));
        TVec m1 = m0, m2 = m0, m3 = m0;
        nuint i = 0;
        for (; i + 4 * width <= n; i += 4 * width)
        {
            m0 = TVec.Max(m0, TVec.Load(x + i));
            m1 = TVec.Max(m1, TVec.Load(x + i + width));
            m2 = TVec.Max(m2, TVec.Load(x + i + 2 * width));
            m3 = TVec.Max(m3, TVec.Load(x + i + 3 * width));
        }
        for (; i + width <= n; i += width)
        {
            m0 = TVec.Max(m0, TVec.Load(x + i));
        }
        return TVec.MaxLanes(TVec.Max(TVec.Max(m0, m1), TVec.Max(m2, m3)));
    }
}
