using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using NativeSoftmax.Kernels;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Operations;

/// <summary>
/// jacobian[i, j] = o_i·(δ_ij − o_j) for o = softmax(logits), one row of logits: the softmax is
/// computed into the last row of the Jacobian, every other row is −o_i·o with the diagonal
/// o_i·Σ_{j≠i} o_j, and the last row is finished in place.
/// </summary>
internal readonly unsafe struct SoftmaxJacobianOperation<T>(long cols, T* logits, T* jacobian, long ldJacobian)
    : IRowOperation<SoftmaxJacobianOperation<T>, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    /// <summary>One row of logits.</summary>
    public long Rows => 1;

    public long Cols => cols;

    public bool Prepare(out Prepared<SoftmaxJacobianOperation<T>> prepared, [NotNullWhen(false)] out Failure? failure)
    {
        bool valid = Checks.Shape(1, cols, out failure)
            && Checks.NotNull(logits, "logits", out failure)
            && Checks.NotNull(jacobian, "jacobian", out failure)
            && Checks.Matrix(cols, cols, ldJacobian, "ld_jacobian", sizeof(T), out failure)
            && Checks.Disjoint(Region.Matrix(jacobian, cols, cols, ldJacobian, "jacobian"),
                new Region(logits, cols, cols, "logits"), sizeof(T), exactAllowed: false, out failure);
        prepared = valid ? new(this) : default;
        return valid;
    }

    public static double Run<TVec>(in Prepared<SoftmaxJacobianOperation<T>> prepared, long first, long end)
        where TVec : struct, IVec<TVec, T>
    {
        if (first < end)
        {
            prepared.Operation.Compute<TVec>();
        }
        return 0.0;
    }

    public static void Finish(in Prepared<SoftmaxJacobianOperation<T>> prepared, double total)
    {
    }

    private void Compute<TVec>()
        where TVec : struct, IVec<TVec, T>
    {
        nuint n = (nuint)cols;
        T* o = jacobian + (cols - 1) * ldJacobian;
        T max = RowLoop<TVec, T>.Max(logits, n);
        ExpSum sum = RowLoop<TVec, T>.SumExps(new ExpShifted<TVec, T>(logits, max), o, n);
        double total = sum.Total;
        RowLoop<TVec, T>.Store(new Scaled<TVec, T>(o, T.CreateTruncating(1.0 / total)), o, n);
        // Σ_{j≠i} o_j for an element at the maximum: (S − 1)/S, not 1 − o_i (which is 0 in float32 for a dominant class).
        double restAtMax = sum.Excluding(1) / total;
        for (long i = 0; i < cols - 1; i++)
        {
            T* row = jacobian + i * ldJacobian;
            T oi = o[i];
            RowLoop<TVec, T>.Store(new Scaled<TVec, T>(o, -oi), row, n);
            row[i] = Diagonal(oi, logits[i] == max, restAtMax);
        }
        T oLast = o[cols - 1];
        RowLoop<TVec, T>.Store(new Scaled<TVec, T>(o, -oLast), o, n);
        o[cols - 1] = Diagonal(oLast, logits[cols - 1] == max, restAtMax);
    }

    /// <summary>o_i − o_i² as o_i·Σ_{j≠i} o_j, in float64, flushed.</summary>
    private static T Diagonal(T oi, bool atMax, double restAtMax)
    {
        double o = double.CreateTruncating(oi);
        return VecMath.FlushSubnormal(T.CreateTruncating(o * (atMax ? restAtMax : 1.0 - o)));
    }
}
