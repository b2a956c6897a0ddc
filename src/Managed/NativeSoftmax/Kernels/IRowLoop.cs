using System.Numerics;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Kernels;

/// <summary>
/// The loop shapes every row kernel is written in, for one width: the maximum of a row, store a
/// function of it, sum a function of it, and sum (and optionally store) its exponentials. Two
/// implementations: <see cref="RowLoop{TVec, T}"/> for rows of any length ≥ Count, and
/// <see cref="ShortRow{TVec, T}"/> for rows of one to two vectors. A kernel generic over the loop
/// type is written once and runs on both.
/// </summary>
/// <remarks>
/// Every store goes through the flush rule (<see cref="VecMath.Flush{TVec, T, TFunction}"/>:
/// <see cref="IVec{TSelf, T}.FlushSubnormal"/>, or its cheaper form for never-negative functions), except
/// the exponentials of <see cref="SumExps"/>, which are intermediate values (and exp already gives
/// 0 below the smallest normal number).
/// </remarks>
internal interface IRowLoop<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    /// <summary>max over x[0 … n) (NaN handling: unspecified; a NaN still poisons the row's sum).</summary>
    static abstract unsafe T Max(T* x, nuint n);

    /// <summary><c>destination[i] = f(i)</c>, flushed, for every i in [0, n); destination may be
    /// exactly a row f reads (every element is read before it is written).</summary>
    static abstract unsafe void Store<TFunction>(in TFunction f, T* destination, nuint n)
        where TFunction : struct, IRowFunction<TVec, T>;

    /// <summary>Σ f(i) over [0, n), in the working precision within blocks and float64 across them.</summary>
    static abstract double Sum<TFunction>(in TFunction f, nuint n)
        where TFunction : struct, IRowFunction<TVec, T>;

    /// <summary>
    /// Σ f(i) over [0, n) for a function whose values are exponentials exp(z − max) (≤ 1), split
    /// into the values that are exactly 1 and the others (<see cref="ExpSum"/>); when
    /// <paramref name="storeTo"/> is not null, f(i) is also stored there (it may be exactly z). A total
    /// of at least 2 may come unsplit (see <see cref="ExpSum"/>).
    /// </summary>
    static abstract unsafe ExpSum SumExps<TFunction>(in TFunction f, T* storeTo, nuint n)
        where TFunction : struct, IRowFunction<TVec, T>;
}
