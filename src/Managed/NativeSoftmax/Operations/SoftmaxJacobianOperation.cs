using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using NativeSoftmax.Kernels;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Operations;

/// <summary>
/// jacobian[i, j] = o_i·(δ_ij − o_j) for o = softmax(logits): the softmax is computed into the
/// last row of the Jacobian, every other row is −o_i·o plus o_i on the diagonal, and the last row
/// is finished in place.
/// </summary>
internal readonly unsafe struct SoftmaxJacobianOperation<T>(long cols, T* logits, T* jacobian, long ldJacobian)
    : IRowOperation<T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    public long Cols => cols;

    public bool Prepare([NotNullWhen(false)] out Failure? failure) =>
        Checks.Shape(1, cols, out failure)
        && Checks.NotNull(logits, "logits", out failure)
        && Checks.NotNull(jacobian, "jacobian", out failure)
        && Checks.Matrix(cols, cols, ldJacobian, "ld_jacobian", sizeof(T), out failure)
        && Checks.Disjoint(Region.Matrix(jacobian, cols, cols, ldJacobian, "jacobian"),
            new Region(logits, cols, cols, "logits"), sizeof(T), exactAllowed: false, out failure);

    public void Run<TVec>() where TVec : struct, IVec<TVec, T>
    {
        nuint n = (nuint)cols;
        T* o = jacobian + (cols - 1) * ldJacobian;
        new SoftmaxOperation<T>(1, cols, logits, cols, o, cols).Run<TVec>();
        for (long i = 0; i < cols - 1; i++)
        {
            T* row = jacobian + i * ldJacobian;
            RowLoop<TVec, T>.Store(new Scaled<TVec, T>(o, -o[i]), row, n);
            row[i] += o[i];
        }
        T oLast = o[cols - 1];
        RowLoop<TVec, T>.Store(new Scaled<TVec, T>(o, -oLast), o, n);
        o[cols - 1] += oLast;
    }
}
