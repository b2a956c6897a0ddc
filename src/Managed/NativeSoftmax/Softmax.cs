using System.Numerics;
using NativeSoftmax.Kernels;

namespace NativeSoftmax;

public static partial class SoftmaxPrimitives
{
    /// <summary>
    /// Softmax of one row: <c>probabilities[j] = exp(z_j − m) / Σ_k exp(z_k − m)</c>, m = max_k z_k.
    /// </summary>
    /// <typeparam name="T"><see cref="float"/>, <see cref="double"/>, or <see cref="Half"/> (computed in float).</typeparam>
    /// <param name="logits">The row z, of length C ≥ 1.</param>
    /// <param name="probabilities">Receives the C probabilities in its first C elements (it may be
    /// longer, as with TensorPrimitives); may be exactly <paramref name="logits"/>.</param>
    /// <exception cref="ArgumentException">The row is empty, <paramref name="probabilities"/> is
    /// shorter than it, or the spans partially overlap.</exception>
    /// <remarks>Float32 results are within 1e-6 relative of the exact value. Source: docs/derivation.md
    /// §1 (the definition of o_j); see <see cref="SoftmaxPrimitives"/> for NaN/±∞.</remarks>
    public static void Softmax<T>(ReadOnlySpan<T> logits, Span<T> probabilities)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        RequireRow(logits, probabilities.Length, nameof(probabilities));
        Softmax(1, logits.Length, logits, logits.Length, probabilities, logits.Length);
    }

    /// <summary>
    /// Softmax of every row of a <c>[rows × cols]</c> matrix:
    /// <c>probabilities[r, j] = exp(z[r, j] − m_r) / Σ_k exp(z[r, k] − m_r)</c>, m_r the row maximum.
    /// </summary>
    /// <typeparam name="T"><see cref="float"/>, <see cref="double"/>, or <see cref="Half"/> (computed in float).</typeparam>
    /// <param name="rows">Number of rows, ≥ 0.</param>
    /// <param name="cols">Classes per row, ≥ 1.</param>
    /// <param name="logits">The logits z, row r at <c>r·ldLogits</c>.</param>
    /// <param name="ldLogits">Leading dimension of <paramref name="logits"/>, ≥ cols.</param>
    /// <param name="probabilities">Receives the probabilities; may be exactly <paramref name="logits"/> (in place).</param>
    /// <param name="ldProbabilities">Leading dimension of <paramref name="probabilities"/>, ≥ cols.</param>
    /// <exception cref="ArgumentOutOfRangeException">rows &lt; 0, cols &lt; 1, or a leading dimension &lt; cols.</exception>
    /// <exception cref="ArgumentException">A span is too short, or the output partially overlaps the input.</exception>
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> is not float, double or Half.</exception>
    /// <remarks>Float32 results are within 1e-6 relative of the exact value. Source: docs/derivation.md §1
    /// (o_j, max-shifted).</remarks>
    public static void Softmax<T>(int rows, int cols, ReadOnlySpan<T> logits, int ldLogits,
        Span<T> probabilities, int ldProbabilities)
        where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
        RowToRow<SoftmaxRow, T>(rows, cols, logits, ldLogits, default, 0, probabilities, ldProbabilities);
}
