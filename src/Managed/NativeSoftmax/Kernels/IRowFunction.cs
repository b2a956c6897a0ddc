using System.Numerics;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Kernels;

/// <summary>
/// A lane-wise function of a row position: <c>Apply(i)</c> computes the vector of results for
/// elements <c>i … i + Count − 1</c> from whatever rows and scalars the struct holds. Kernels are
/// such structs (RowFunctions.cs), run by the loops of an <see cref="IRowLoop{TVec, T}"/>.
/// </summary>
internal interface IRowFunction<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    TVec Apply(nuint i);

    /// <summary>Whether every value is ≥ 0 or NaN, never negative (probabilities): the loops then
    /// flush with a compare and a blend, no absolute value (<see cref="VecMath.FlushNonNegative"/>).</summary>
    static virtual bool IsNonNegative => false;
}
