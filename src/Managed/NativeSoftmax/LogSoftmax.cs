using System.Numerics;
using NativeSoftmax.Kernels;

namespace NativeSoftmax;

public static partial class SoftmaxPrimitives
{
    /// <summary>
    /// Log-softmax of one row: <c>logProbabilities[j] = (z_j − m) − log Σ_k exp(z_k − m)</c>.
    /// </summary>
    /// <typeparam name="T"><see cref="float"/>, <see cref="double"/>, or <see cref="Half"/> (computed in float).</typeparam>
    /// <param name="logits">The row z, of length C ≥ 1.</param>
    /// <param name="logProbabilities">Receives the C log-probabilities in its first C elements (it
    /// may be longer); may be exactly <paramref name="logits"/>.</param>
    /// <exception cref="ArgumentException">The row is empty, <paramref name="logProbabilities"/> is
    /// shorter than it, or the spans partially overlap.</exception>
    /// <remarks>Never computed as log(softmax), so it does not underflow to −∞ for unlikely
    /// classes; float32 results are within 2e-6·(1 + |exact|).</remarks>
    public static void LogSoftmax<T>(ReadOnlySpan<T> logits, Span<T> logProbabilities)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        RequireRow(logits, logProbabilities.Length, nameof(logProbabilities));
        LogSoftmax(1, logits.Length, logits, logits.Length, logProbabilities, logits.Length);
    }

    /// <summary>
    /// Log-softmax of every row of a <c>[rows × cols]</c> matrix:
    /// <c>logProbabilities[r, j] = (z[r, j] − m_r) − log Σ_k exp(z[r, k] − m_r)</c>.
    /// </summary>
    /// <typeparam name="T"><see cref="float"/>, <see cref="double"/>, or <see cref="Half"/> (computed in float).</typeparam>
    /// <param name="rows">Number of rows, ≥ 0.</param>
    /// <param name="cols">Classes per row, ≥ 1.</param>
    /// <param name="logits">The logits z, row r at <c>r·ldLogits</c>.</param>
    /// <param name="ldLogits">Leading dimension of <paramref name="logits"/>, ≥ cols.</param>
    /// <param name="logProbabilities">Receives the log-probabilities; may be exactly <paramref name="logits"/>.</param>
    /// <param name="ldLogProbabilities">Leading dimension of <paramref name="logProbabilities"/>, ≥ cols.</param>
    /// <exception cref="ArgumentOutOfRangeException">rows &lt; 0, cols &lt; 1, or a leading dimension &lt; cols.</exception>
    /// <exception cref="ArgumentException">A span is too short, or the output partially overlaps the input.</exception>
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> is not float, double or Half.</exception>
    /// <remarks>Float32 results are within 2e-6·(1 + |exact|). A −∞ logit in a row with a finite
    /// maximum gives −∞. Source: docs/derivation.md §1.</remarks>
    public static void LogSoftmax<T>(int rows, int cols, ReadOnlySpan<T> logits, int ldLogits,
        Span<T> logProbabilities, int ldLogProbabilities)
        where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
        RowToRow<LogSoftmaxRow, T>(rows, cols, logits, ldLogits, default, 0, logProbabilities, ldLogProbabilities);
}
