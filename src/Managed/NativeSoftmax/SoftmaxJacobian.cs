using System.Numerics;
using NativeSoftmax.Operations;

namespace NativeSoftmax;

public static partial class SoftmaxPrimitives
{
    /// <summary>
    /// The softmax Jacobian of one row, <c>jacobian[i, j] = ∂o_i/∂z_j = o_i·(δ_ij − o_j)</c>,
    /// i.e. J = diag(o) − o oᵀ with o = softmax(logits): docs/derivation.md §2's ∂o_i/∂z_i = o_i − o_i² and
    /// ∂o_j/∂z_i = −o_j·o_i. For verification and small problems (C² outputs).
    /// </summary>
    /// <typeparam name="T"><see cref="float"/>, <see cref="double"/>, or <see cref="Half"/> (computed in float).</typeparam>
    /// <param name="logits">The row z, of length C ≥ 1.</param>
    /// <param name="jacobian">Receives the C × C Jacobian, row i at <c>i·ldJacobian</c>; must not overlap <paramref name="logits"/>.</param>
    /// <param name="ldJacobian">Leading dimension of <paramref name="jacobian"/>, ≥ C.</param>
    /// <exception cref="ArgumentOutOfRangeException">ldJacobian &lt; C.</exception>
    /// <exception cref="ArgumentException">The row is empty, or <paramref name="jacobian"/> is too
    /// short or overlaps <paramref name="logits"/>.</exception>
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> is not float, double or Half.</exception>
    public static unsafe void SoftmaxJacobian<T>(ReadOnlySpan<T> logits, Span<T> jacobian, int ldJacobian)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        RequireSupported<T>();
        RequireRow(logits, int.MaxValue, nameof(jacobian));
        RequireLength(jacobian.Length, logits.Length, logits.Length, ldJacobian, "jacobian");
        fixed (T* z = logits)
        fixed (T* j = jacobian)
        {
            if (typeof(T) == typeof(Half))
            {
                HalfJacobian(logits.Length, (Half*)z, (Half*)j, ldJacobian);
                return;
            }
            Execute<SoftmaxJacobianOperation<T>, T>(new(logits.Length, z, j, ldJacobian));
        }
    }
}
