using System.Numerics;
using NativeSoftmax.Operations;

namespace NativeSoftmax;

public static partial class SoftmaxPrimitives
{
    /// <summary>
    /// Fused softmax cross-entropy with hard labels (class indices), and optionally its gradient
    /// with respect to the logits, with the semantics of PyTorch's <c>F.cross_entropy</c>.
    /// </summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    /// <param name="rows">Number of rows (samples), ≥ 0.</param>
    /// <param name="cols">Number of classes C, ≥ 1.</param>
    /// <param name="logits">The logits z, row r at <c>r·ldLogits</c>.</param>
    /// <param name="ldLogits">Leading dimension of <paramref name="logits"/>, ≥ cols.</param>
    /// <param name="target">rows class indices in [0, C), or <see cref="CrossEntropyOptions.IgnoreIndex"/>.</param>
    /// <param name="weight">C class weights (finite; negative allowed), or empty for all ones.</param>
    /// <param name="loss">Receives rows losses for <see cref="Reduction.None"/>, else one value; empty to skip.</param>
    /// <param name="grad">Receives ∂loss/∂z (rows × C, leading dimension <paramref name="ldGrad"/>); empty to skip;
    /// may be exactly <paramref name="logits"/> (the logits are then overwritten).</param>
    /// <param name="ldGrad">Leading dimension of <paramref name="grad"/>, ≥ cols (ignored when grad is empty).</param>
    /// <param name="options">Reduction, ignore_index, label_smoothing and grad scale; null for the defaults.</param>
    /// <exception cref="ArgumentOutOfRangeException">A bad shape or leading dimension, or a label outside
    /// [0, C) that is not ignore_index (checked for every row before anything is written).</exception>
    /// <exception cref="ArgumentException">A bad option or weight, a short span, both outputs empty, or overlapping outputs.</exception>
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> is neither float nor double.</exception>
    /// <remarks>
    /// <para>Row loss, with w the weights and ε the label smoothing:
    /// <c>(1 − ε)·w_t·(lse − z_t) + (ε/C)·Σ_j w_j·(lse − z_j)</c>, lse = log Σ exp z.
    /// Gradient: <c>s·(o·Σy − y)</c> with y_j = (1 − ε)·w_t·δ_jt + (ε/C)·w_j (the seed's general
    /// form; o − y for ε = 0, w = 1), s = grad scale, divided by Σ w_t over the non-ignored rows for
    /// the mean. Ignored rows: loss 0, gradient 0. Mean over no rows: NaN.</para>
    /// <para>Losses are accumulated in float64; float32 row losses are within 2e-6·(1 + |exact|).
    /// Source: shared/seed/softmax-cross-entropy-gradient.md.</para>
    /// </remarks>
    public static unsafe void CrossEntropy<T>(int rows, int cols, ReadOnlySpan<T> logits, int ldLogits,
        ReadOnlySpan<long> target, ReadOnlySpan<T> weight, Span<T> loss, Span<T> grad, int ldGrad,
        CrossEntropyOptions? options = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        options ??= CrossEntropyOptions.Default;
        RequireFloatOrDouble<T>();
        RequireLength(logits.Length, rows, cols, ldLogits, "logits");
        RequireCounts(target.Length, rows, weight.Length, cols, loss.Length, grad.Length, options);
        if (!grad.IsEmpty)
        {
            RequireLength(grad.Length, rows, cols, ldGrad, "grad");
        }
        fixed (T* z = logits)
        fixed (long* t = target)
        fixed (T* w = weight)
        fixed (T* l = loss)
        fixed (T* g = grad)
        {
            Execute<HardLabelCrossEntropyOperation<T, LossOptions>, T>(
                new(rows, cols, z, ldLogits, t, w, options.ToLossOptions(), l, g, ldGrad));
        }
    }

    /// <summary>
    /// Fused softmax cross-entropy with hard labels on contiguous rows (ld = cols), returning the
    /// reduced loss (<see cref="Reduction.Mean"/> or <see cref="Reduction.Sum"/>) and writing the
    /// gradient into <paramref name="grad"/> unless it is empty.
    /// See <see cref="CrossEntropy{T}(int, int, ReadOnlySpan{T}, int, ReadOnlySpan{long}, ReadOnlySpan{T}, Span{T}, Span{T}, int, CrossEntropyOptions?)"/>.
    /// </summary>
    /// <exception cref="ArgumentException">options asks for <see cref="Reduction.None"/> (use the
    /// overload with a loss span), or <paramref name="logits"/> does not hold exactly
    /// target.Length × <paramref name="cols"/> values.</exception>
    public static T CrossEntropy<T>(int cols, ReadOnlySpan<T> logits, ReadOnlySpan<long> target, Span<T> grad = default,
        CrossEntropyOptions? options = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        options ??= CrossEntropyOptions.Default;
        if (options.Reduction == Reduction.None)
        {
            throw new ArgumentException("Reduction.None gives one loss per row: use the overload with a loss span.", nameof(options));
        }
        if (cols > 0 && logits.Length != (long)target.Length * cols)
        {
            throw new ArgumentException(
                $"logits has {logits.Length} values; {target.Length} labels with {cols} classes need {(long)target.Length * cols}.", nameof(logits));
        }
        T result = default;
        CrossEntropy(target.Length, cols, logits, cols, target, default, new Span<T>(ref result), grad, cols, options);
        return result;
    }

    /// <summary>
    /// Fused softmax cross-entropy with soft targets (class probabilities), and optionally its
    /// gradient, with the semantics of PyTorch's <c>F.cross_entropy</c> for probability targets.
    /// </summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    /// <param name="rows">Number of rows (samples), ≥ 0.</param>
    /// <param name="cols">Number of classes C, ≥ 1.</param>
    /// <param name="logits">The logits z, row r at <c>r·ldLogits</c>.</param>
    /// <param name="ldLogits">Leading dimension of <paramref name="logits"/>, ≥ cols.</param>
    /// <param name="target">Target weights per class p (rows × C); need not sum to 1.</param>
    /// <param name="ldTarget">Leading dimension of <paramref name="target"/>, ≥ cols.</param>
    /// <param name="weight">C class weights (finite), or empty for all ones.</param>
    /// <param name="loss">Receives rows losses for <see cref="Reduction.None"/>, else one value; empty to skip.</param>
    /// <param name="grad">Receives ∂loss/∂z; empty to skip; may be exactly <paramref name="logits"/> or <paramref name="target"/>.</param>
    /// <param name="ldGrad">Leading dimension of <paramref name="grad"/>, ≥ cols (ignored when grad is empty).</param>
    /// <param name="options">Reduction, label_smoothing and grad scale (ignore_index is not used); null for the defaults.</param>
    /// <exception cref="ArgumentOutOfRangeException">A bad shape or leading dimension.</exception>
    /// <exception cref="ArgumentException">A bad option or weight, a short span, both outputs empty, or overlapping outputs.</exception>
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> is neither float nor double.</exception>
    /// <remarks>
    /// <para>With ŷ_j = ((1 − ε)·p_j + ε/C)·w_j: row loss <c>Σ_j ŷ_j·(lse − z_j)</c>, where a
    /// term with ŷ_j = 0 adds 0 even on a −∞ logit (PyTorch gives NaN there); gradient
    /// <c>s·(o·Σŷ − ŷ)</c>, exact for targets that do not sum to 1 (the seed's general form before
    /// its last step). Mean divides by rows, as PyTorch does for probability targets.</para>
    /// <para>Source: shared/seed/softmax-cross-entropy-gradient.md.</para>
    /// </remarks>
    public static unsafe void CrossEntropy<T>(int rows, int cols, ReadOnlySpan<T> logits, int ldLogits,
        ReadOnlySpan<T> target, int ldTarget, ReadOnlySpan<T> weight, Span<T> loss, Span<T> grad, int ldGrad,
        CrossEntropyOptions? options = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        options ??= CrossEntropyOptions.Default;
        RequireFloatOrDouble<T>();
        RequireLength(logits.Length, rows, cols, ldLogits, "logits");
        RequireLength(target.Length, rows, cols, ldTarget, "target");
        RequireCounts(rows, rows, weight.Length, cols, loss.Length, grad.Length, options);
        if (!grad.IsEmpty)
        {
            RequireLength(grad.Length, rows, cols, ldGrad, "grad");
        }
        fixed (T* z = logits)
        fixed (T* p = target)
        fixed (T* w = weight)
        fixed (T* l = loss)
        fixed (T* g = grad)
        {
            Execute<SoftTargetCrossEntropyOperation<T, LossOptions>, T>(
                new(rows, cols, z, ldLogits, p, ldTarget, w, options.ToLossOptions(), l, g, ldGrad));
        }
    }

    private static void RequireCounts(int targetLength, int rows, int weightLength, int cols, int lossLength, int gradLength,
        CrossEntropyOptions options)
    {
        if (rows > 0 && lossLength == 0 && gradLength == 0)
        {
            throw new ArgumentException("loss and grad are both empty: ask for at least one of them.", "loss");
        }
        if (targetLength != rows)
        {
            throw new ArgumentException($"target has {targetLength} labels for {rows} rows.", "target");
        }
        if (weightLength != 0 && weightLength != cols)
        {
            throw new ArgumentException($"weight has {weightLength} elements for {cols} classes (pass an empty span for no weights).", "weight");
        }
        int lossCount = options.Reduction == Reduction.None ? rows : 1;
        if (lossLength != 0 && lossLength < lossCount)
        {
            throw new ArgumentException($"loss has {lossLength} elements; reduction {options.Reduction} writes {lossCount}.", "loss");
        }
    }
}
