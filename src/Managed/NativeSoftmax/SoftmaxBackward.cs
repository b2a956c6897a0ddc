using System.Numerics;
using NativeSoftmax.Kernels;

namespace NativeSoftmax;

public static partial class SoftmaxPrimitives
{
    /// <summary>
    /// Backward pass of <see cref="Softmax{T}(int, int, ReadOnlySpan{T}, int, Span{T}, int)"/>, the
    /// vector–Jacobian product <c>gradLogits = o ⊙ (g − ⟨g, o⟩)</c> row by row, where
    /// J = diag(o) − o oᵀ (the two partial derivatives of docs/derivation.md §2), o the forward output and g the
    /// upstream gradient. Same as PyTorch's <c>_softmax_backward_data</c>.
    /// </summary>
    /// <typeparam name="T"><see cref="float"/>, <see cref="double"/>, or <see cref="Half"/> (computed in float).</typeparam>
    /// <param name="rows">Number of rows, ≥ 0.</param>
    /// <param name="cols">Classes per row, ≥ 1.</param>
    /// <param name="gradOutput">The upstream gradient g = ∂L/∂o.</param>
    /// <param name="ldGradOutput">Leading dimension of <paramref name="gradOutput"/>, ≥ cols.</param>
    /// <param name="output">The forward output o (probabilities).</param>
    /// <param name="ldOutput">Leading dimension of <paramref name="output"/>, ≥ cols.</param>
    /// <param name="gradLogits">Receives ∂L/∂z; may be exactly <paramref name="gradOutput"/> or <paramref name="output"/>.</param>
    /// <param name="ldGradLogits">Leading dimension of <paramref name="gradLogits"/>, ≥ cols.</param>
    /// <exception cref="ArgumentOutOfRangeException">rows &lt; 0, cols &lt; 1, or a leading dimension &lt; cols.</exception>
    /// <exception cref="ArgumentException">A span is too short, or the output partially overlaps an input.</exception>
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> is not float, double or Half.</exception>
    /// <remarks>⟨g, o⟩ is accumulated in the working precision with several partial sums.</remarks>
    public static void SoftmaxBackward<T>(int rows, int cols, ReadOnlySpan<T> gradOutput, int ldGradOutput,
        ReadOnlySpan<T> output, int ldOutput, Span<T> gradLogits, int ldGradLogits)
        where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
        RowToRow<SoftmaxBackwardRow, T>(rows, cols, gradOutput, ldGradOutput, output, ldOutput, gradLogits, ldGradLogits);
}
