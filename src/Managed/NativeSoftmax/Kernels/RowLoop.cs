using System.Numerics;
using System.Runtime.CompilerServices;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Kernels;

/// <summary>
/// A lane-wise function of a row position: <c>Apply(i)</c> computes the vector of results for
/// elements <c>i … i + Count − 1</c> from whatever rows and scalars the struct holds. Kernels are
/// such structs, run by the loops of <see cref="RowLoop{TVec, T}"/>.
/// </summary>
internal interface IRowFunction<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    TVec Apply(nuint i);
}

/// <summary>
/// The three loop shapes every row kernel uses, for one width: store a function of the row,
/// sum it, or both. Rows must hold at least <c>TVec.Count</c> elements (the width dispatch
/// guarantees it; shorter rows use the one-lane width).
/// </summary>
/// <remarks>
/// Tails: the last, partial vector is handled by evaluating the function on the final full
/// vector <c>[n − Count, n)</c>, which overlaps elements already done. Stores of it write the same
/// values again; sums mask the overlapping lanes out. The tail is evaluated before the main loop
/// stores anything, so an output that is exactly its input (in place) still reads original
/// values. Nothing outside <c>[0, n)</c> is ever read or written.
/// </remarks>
internal static unsafe class RowLoop<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    // Each loop evaluates f at exactly two call sites, the tail and the loop body: every call site
    // inlines the whole kernel (exp included), and more copies exhaust the JIT's inlining budget,
    // which then leaves calls to the vector operators inside the loop (seen in the disassembly).
    // Sums keep four independent partial sums, rotated each step, flushed to float64 by blocks.

    /// <summary><c>destination[i] = f(i)</c> for every i in [0, n).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // one compilation unit per loop, so each gets the full inlining budget for its kernel
    public static void Store<TFunction>(TFunction f, T* destination, nuint n)
        where TFunction : struct, IRowFunction<TVec, T>
    {
        nuint width = (nuint)TVec.Count;
        TVec last = f.Apply(n - width);
        nuint i = 0;
        for (; i + width <= n; i += width)
        {
            TVec.Store(f.Apply(i), destination + i);
        }
        if (i < n)
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
    public static double Sum<TFunction>(TFunction f, nuint n)
        where TFunction : struct, IRowFunction<TVec, T>
    {
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

    /// <summary><c>destination[i] = f(i)</c> and returns Σ f(i) (summed as <see cref="Sum"/>), in one pass.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static double StoreAndSum<TFunction>(TFunction f, T* destination, nuint n)
        where TFunction : struct, IRowFunction<TVec, T>
    {
        nuint width = (nuint)TVec.Count;
        TVec zero = TVec.Create(T.Zero);
        TVec last = f.Apply(n - width);
        nuint full = n - n % width;
        double total = full < n
            ? double.CreateTruncating(TVec.SumLanes(TVec.Select(TVec.LanesFrom((int)(full + width - n)), last, zero)))
            : 0.0;
        for (nuint i = 0; i < full;)
        {
            nuint blockEnd = Math.Min(full, i + BlockVectors * width);
            TVec s0 = zero, s1 = zero, s2 = zero, s3 = zero;
            for (; i < blockEnd; i += width)
            {
                TVec value = f.Apply(i);
                TVec.Store(value, destination + i);
                TVec next = s0 + value;
                s0 = s1;
                s1 = s2;
                s2 = s3;
                s3 = next;
            }
            total += double.CreateTruncating(TVec.SumLanes((s0 + s1) + (s2 + s3)));
        }
        if (full < n)
        {
            TVec.Store(last, destination + (n - width));
        }
        return total;
    }

    /// <summary>max over x[0 … n) (NaN handling: unspecified; a NaN still poisons the row's sum).</summary>
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
