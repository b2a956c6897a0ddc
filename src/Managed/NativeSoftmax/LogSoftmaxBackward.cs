using System.Numerics;
using NativeSoftmax.Kernels;

namespace NativeSoftmax;

public static partial class SoftmaxPrimitives
{
    /// <summary>
    /// Backward pass of <see cref="LogSoftmax{T}(int, int, ReadOnlySpan{T}, int, Span{T}, int)"/>:
    /// <c>gradLogits = g − exp(output) · Σ_j g_j</c> row by row, where output is the forward
    /// log-probabilities and g the upstream gradient. Same as PyTorch's
    /// <c>_log_softmax_backward_data</c>.
    /// </summary>
    /// <typeparam name="T"><see cref="float"/>, <see cref="double"/>, or <see cref="Half"/> (computed in float).</typeparam>
    /// <param name="rows">Number of rows, ≥ 0.</param>
    /// <param name="cols">Classes per row, ≥ 1.</param>
    /// <param name="gradOutput">The upstream gradient g = ∂L/∂(log o).</param>
    /// <param name="ldGradOutput">Leading dimension of <paramref name="gradOutput"/>, ≥ cols.</param>
    /// <param name="output">The forward output, log-probabilities.</param>
    /// <param name="ldOutput">Leading dimension of <paramref name="output"/>, ≥ cols.</param>
    /// <param name="gradLogits">Receives ∂L/∂z; may be exactly <paramref name="gradOutput"/> or <paramref name="output"/>.</param>
    /// <param name="ldGradLogits">Leading dimension of <paramref name="gradLogits"/>, ≥ cols.</param>
    /// <exception cref="ArgumentOutOfRangeException">rows &lt; 0, cols &lt; 1, or a leading dimension &lt; cols.</exception>
    /// <exception cref="ArgumentException">A span is too short, or the output partially overlaps an input.</exception>
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> is not float, double or Half.</exception>
    /// <remarks>Derived from docs/derivation.md §2's ∂o_j/∂z_i = o_j·(δ_ij − o_i) divided by o_j.</remarks>
    public static void LogSoftmaxBackward<T>(int rows, int cols, ReadOnlySpan<T> gradOutput, int ldGradOutput,
        ReadOnlySpan<T> output, int ldOutput, Span<T> gradLogits, int ldGradLogits)
        where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
        RowToRow<LogSoftmaxBackwardRow, T>(rows, cols, gradOutput, ldGradOutput, output, ldOutput, gradLogits, ldGradLogits);
}
