using System.Numerics;
using NativeSoftmax.Operations;

namespace NativeSoftmax;

public static partial class SoftmaxPrimitives
{
    /// <summary>
    /// Fused softmax cross-entropy with hard labels (class indices), and optionally its gradient
    /// with respect to the logits, with the semantics of PyTorch's <c>F.cross_entropy</c>.
    /// </summary>
    /// <typeparam name="T"><see cref="float"/>, <see cref="double"/>, or <see cref="Half"/> (computed in float).</typeparam>
    /// <param name="rows">Number of rows (samples), ≥ 0.</param>
    /// <param name="cols">Number of classes C, ≥ 1.</param>
    /// <param name="logits">The logits z, row r at <c>r·ldLogits</c>.</param>
    /// <param name="ldLogits">Leading dimension of <paramref name="logits"/>, ≥ cols.</param>
    /// <param name="target">rows class indices in [0, C), or <see cref="CrossEntropyOptions.IgnoreIndex"/>; long or
    /// int (an overload each; int labels are read where they are, widened to long one at a time).</param>
    /// <param name="weight">C class weights (finite; negative allowed), or empty for all ones.</param>
    /// <param name="loss">Receives rows losses for <see cref="Reduction.None"/>, else one value; empty to skip.</param>
    /// <param name="grad">Receives ∂loss/∂z (rows × C, leading dimension <paramref name="ldGrad"/>); empty to skip;
    /// may be exactly <paramref name="logits"/> (the logits are then overwritten).</param>
    /// <param name="ldGrad">Leading dimension of <paramref name="grad"/>, ≥ cols (ignored when grad is empty).</param>
    /// <param name="options">Reduction, ignore_index, label_smoothing and grad scale; null for the defaults.</param>
    /// <exception cref="ArgumentOutOfRangeException">A bad shape or leading dimension, or a label outside
    /// [0, C) that is not ignore_index (checked for every row before anything is written).</exception>
    /// <exception cref="ArgumentException">A bad option or weight, a short span, both outputs empty, or overlapping outputs.</exception>
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> is not float, double or Half.</exception>
    /// <remarks>
    /// <para>Row loss, with w the weights and ε the label smoothing:
    /// <c>(1 − ε)·w_t·(lse − z_t) + (ε/C)·Σ_j w_j·(lse − z_j)</c>, lse = log Σ exp z.
    /// Gradient: <c>s·(o·Σy − y)</c> with y_j = (1 − ε)·w_t·δ_jt + (ε/C)·w_j (docs/derivation.md §4's general
    /// form; o − y for ε = 0, w = 1), s = grad scale, divided by Σ w_t over the non-ignored rows for
    /// the mean. Ignored rows: loss 0, gradient 0. Mean over no rows: NaN.</para>
    /// <para>Losses are accumulated in float64; float32 row losses are within 2e-6·(1 + |exact|).
    /// Source: docs/derivation.md.</para>
    /// </remarks>
    public static void CrossEntropy<T>(int rows, int cols, ReadOnlySpan<T> logits, int ldLogits,
        ReadOnlySpan<long> target, ReadOnlySpan<T> weight, Span<T> loss, Span<T> grad, int ldGrad,
        CrossEntropyOptions? options = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
        HardLabels(rows, cols, logits, ldLogits, target, weight, default, loss, grad, ldGrad, options);

    /// <inheritdoc cref="CrossEntropy{T}(int, int, ReadOnlySpan{T}, int, ReadOnlySpan{long}, ReadOnlySpan{T}, Span{T}, Span{T}, int, CrossEntropyOptions?)"/>
    public static void CrossEntropy<T>(int rows, int cols, ReadOnlySpan<T> logits, int ldLogits,
        ReadOnlySpan<int> target, ReadOnlySpan<T> weight, Span<T> loss, Span<T> grad, int ldGrad,
        CrossEntropyOptions? options = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
        HardLabels(rows, cols, logits, ldLogits, target, weight, default, loss, grad, ldGrad, options);

    /// <summary>
    /// Fused softmax cross-entropy with hard labels and a per-row upstream gradient: with
    /// <see cref="Reduction.None"/>, row r's gradient is multiplied by
    /// <c>gradOutput[r]·GradScale</c> (the vector–Jacobian product of the per-row losses, as
    /// PyTorch's backward of <c>F.cross_entropy(..., reduction="none")</c>). Otherwise as
    /// <see cref="CrossEntropy{T}(int, int, ReadOnlySpan{T}, int, ReadOnlySpan{long}, ReadOnlySpan{T}, Span{T}, Span{T}, int, CrossEntropyOptions?)"/>.
    /// </summary>
    /// <typeparam name="T"><see cref="float"/>, <see cref="double"/>, or <see cref="Half"/> (computed in float).</typeparam>
    /// <param name="rows">Number of rows (samples), ≥ 0.</param>
    /// <param name="cols">Number of classes C, ≥ 1.</param>
    /// <param name="logits">The logits z, row r at <c>r·ldLogits</c>.</param>
    /// <param name="ldLogits">Leading dimension of <paramref name="logits"/>, ≥ cols.</param>
    /// <param name="target">rows class indices in [0, C), or <see cref="CrossEntropyOptions.IgnoreIndex"/>; long or
    /// int (an overload each; int labels are read where they are, widened to long one at a time).</param>
    /// <param name="weight">C class weights (finite; negative allowed), or empty for all ones.</param>
    /// <param name="gradOutput">rows upstream gradients ∂L/∂loss_r, reduction none only; empty for
    /// the grad scale alone. Not checked: NaN and ±∞ multiply their row's gradient as they are
    /// (as PyTorch); an ignored row's gradient stays 0. The losses do not depend on it.</param>
    /// <param name="loss">Receives rows losses for <see cref="Reduction.None"/>, else one value; empty to skip.</param>
    /// <param name="grad">Receives the gradient (rows × C, leading dimension <paramref name="ldGrad"/>); empty to skip;
    /// may be exactly <paramref name="logits"/>.</param>
    /// <param name="ldGrad">Leading dimension of <paramref name="grad"/>, ≥ cols (ignored when grad is empty).</param>
    /// <param name="options">Reduction (none, to use <paramref name="gradOutput"/>), ignore_index, label_smoothing
    /// and grad scale; null for the defaults (whose mean reduction refuses a non-empty gradOutput).</param>
    /// <exception cref="ArgumentOutOfRangeException">A bad shape or leading dimension, or a label outside
    /// [0, C) that is not ignore_index.</exception>
    /// <exception cref="ArgumentException">A bad option or weight; <paramref name="gradOutput"/> not empty with
    /// a reduction other than none, not holding rows values, or overlapping <paramref name="loss"/> or
    /// <paramref name="grad"/>; a short span, both outputs empty, or overlapping outputs.</exception>
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> is not float, double or Half.</exception>
    public static void CrossEntropy<T>(int rows, int cols, ReadOnlySpan<T> logits, int ldLogits,
        ReadOnlySpan<long> target, ReadOnlySpan<T> weight, ReadOnlySpan<T> gradOutput, Span<T> loss, Span<T> grad, int ldGrad,
        CrossEntropyOptions? options = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
        HardLabels(rows, cols, logits, ldLogits, target, weight, gradOutput, loss, grad, ldGrad, options);

    /// <inheritdoc cref="CrossEntropy{T}(int, int, ReadOnlySpan{T}, int, ReadOnlySpan{long}, ReadOnlySpan{T}, ReadOnlySpan{T}, Span{T}, Span{T}, int, CrossEntropyOptions?)"/>
    public static void CrossEntropy<T>(int rows, int cols, ReadOnlySpan<T> logits, int ldLogits,
        ReadOnlySpan<int> target, ReadOnlySpan<T> weight, ReadOnlySpan<T> gradOutput, Span<T> loss, Span<T> grad, int ldGrad,
        CrossEntropyOptions? options = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
        HardLabels(rows, cols, logits, ldLogits, target, weight, gradOutput, loss, grad, ldGrad, options);

    private static unsafe void HardLabels<T, TLabel>(int rows, int cols, ReadOnlySpan<T> logits, int ldLogits,
        ReadOnlySpan<TLabel> target, ReadOnlySpan<T> weight, ReadOnlySpan<T> gradOutput, Span<T> loss, Span<T> grad, int ldGrad,
        CrossEntropyOptions? options)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TLabel : unmanaged, IBinaryInteger<TLabel>, ISignedNumber<TLabel>
    {
        options ??= CrossEntropyOptions.Default;
        RequireSupported<T>();
        RequireLength(logits.Length, rows, cols, ldLogits, "logits");
        RequireCounts(target.Length, rows, weight.Length, cols, gradOutput.Length, loss.Length, grad.Length, options);
        if (!grad.IsEmpty)
        {
            RequireLength(grad.Length, rows, cols, ldGrad, "grad");
        }
        fixed (T* z = logits)
        fixed (TLabel* t = target)
        fixed (T* w = weight)
        fixed (T* u = gradOutput)
        fixed (T* l = loss)
        fixed (T* g = grad)
        {
            if (typeof(T) == typeof(Half))
            {
                HalfHardLabels(rows, cols, (Half*)z, ldLogits, t, (Half*)w, (Half*)u, (Half*)l, (Half*)g, ldGrad, options);
                return;
            }
            Execute<HardLabelCrossEntropyOperation<T, TLabel, LossOptions>, T>(
                new(rows, cols, z, ldLogits, t, w, options.ToLossOptions(u), l, g, ldGrad));
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
        where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
        ReducedHardLabels(cols, logits, target, grad, options);

    /// <inheritdoc cref="CrossEntropy{T}(int, ReadOnlySpan{T}, ReadOnlySpan{long}, Span{T}, CrossEntropyOptions?)"/>
    public static T CrossEntropy<T>(int cols, ReadOnlySpan<T> logits, ReadOnlySpan<int> target, Span<T> grad = default,
        CrossEntropyOptions? options = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
        ReducedHardLabels(cols, logits, target, grad, options);

    private static T ReducedHardLabels<T, TLabel>(int cols, ReadOnlySpan<T> logits, ReadOnlySpan<TLabel> target, Span<T> grad,
        CrossEntropyOptions? options)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TLabel : unmanaged, IBinaryInteger<TLabel>, ISignedNumber<TLabel>
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
        HardLabels(target.Length, cols, logits, cols, target, default, default, new Span<T>(ref result), grad, cols, options);
        return result;
    }

    /// <summary>
    /// Fused softmax cross-entropy with soft targets (class probabilities), and optionally its
    /// gradient, with the semantics of PyTorch's <c>F.cross_entropy</c> for probability targets.
    /// </summary>
    /// <typeparam name="T"><see cref="float"/>, <see cref="double"/>, or <see cref="Half"/> (computed in float).</typeparam>
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
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> is not float, double or Half.</exception>
    /// <remarks>
    /// <para>With ŷ_j = ((1 − ε)·p_j + ε/C)·w_j: row loss <c>Σ_j ŷ_j·(lse − z_j)</c>, where a
    /// term with ŷ_j = 0 adds 0 even on a −∞ logit (PyTorch gives NaN there); gradient
    /// <c>s·(o·Σŷ − ŷ)</c>, exact for targets that do not sum to 1 (docs/derivation.md §4's general form before
    /// its last step). Mean divides by rows, as PyTorch does for probability targets.</para>
    /// <para>Source: docs/derivation.md.</para>
    /// </remarks>
    public static void CrossEntropy<T>(int rows, int cols, ReadOnlySpan<T> logits, int ldLogits,
        ReadOnlySpan<T> target, int ldTarget, ReadOnlySpan<T> weight, Span<T> loss, Span<T> grad, int ldGrad,
        CrossEntropyOptions? options = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
        SoftTargets(rows, cols, logits, ldLogits, target, ldTarget, weight, default, loss, grad, ldGrad, options);

    /// <summary>
    /// Fused softmax cross-entropy with soft targets and a per-row upstream gradient: with
    /// <see cref="Reduction.None"/>, row r's gradient is multiplied by <c>gradOutput[r]·GradScale</c>.
    /// Otherwise as <see cref="CrossEntropy{T}(int, int, ReadOnlySpan{T}, int, ReadOnlySpan{T}, int, ReadOnlySpan{T}, Span{T}, Span{T}, int, CrossEntropyOptions?)"/>.
    /// </summary>
    /// <typeparam name="T"><see cref="float"/>, <see cref="double"/>, or <see cref="Half"/> (computed in float).</typeparam>
    /// <param name="rows">Number of rows (samples), ≥ 0.</param>
    /// <param name="cols">Number of classes C, ≥ 1.</param>
    /// <param name="logits">The logits z, row r at <c>r·ldLogits</c>.</param>
    /// <param name="ldLogits">Leading dimension of <paramref name="logits"/>, ≥ cols.</param>
    /// <param name="target">Target weights per class p (rows × C); need not sum to 1.</param>
    /// <param name="ldTarget">Leading dimension of <paramref name="target"/>, ≥ cols.</param>
    /// <param name="weight">C class weights (finite), or empty for all ones.</param>
    /// <param name="gradOutput">rows upstream gradients ∂L/∂loss_r, reduction none only; empty for
    /// the grad scale alone. Not checked: NaN and ±∞ multiply their row's gradient as they are
    /// (as PyTorch); a row whose targets are all zero keeps a zero gradient.</param>
    /// <param name="loss">Receives rows losses for <see cref="Reduction.None"/>, else one value; empty to skip.</param>
    /// <param name="grad">Receives the gradient; empty to skip; may be exactly <paramref name="logits"/> or <paramref name="target"/>.</param>
    /// <param name="ldGrad">Leading dimension of <paramref name="grad"/>, ≥ cols (ignored when grad is empty).</param>
    /// <param name="options">Reduction (none, to use <paramref name="gradOutput"/>), label_smoothing and grad scale; null for the defaults.</param>
    /// <exception cref="ArgumentOutOfRangeException">A bad shape or leading dimension.</exception>
    /// <exception cref="ArgumentException">A bad option or weight; <paramref name="gradOutput"/> not empty with
    /// a reduction other than none, not holding rows values, or overlapping an output; a short span, both
    /// outputs empty, or overlapping outputs.</exception>
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> is not float, double or Half.</exception>
    public static void CrossEntropy<T>(int rows, int cols, ReadOnlySpan<T> logits, int ldLogits,
        ReadOnlySpan<T> target, int ldTarget, ReadOnlySpan<T> weight, ReadOnlySpan<T> gradOutput, Span<T> loss, Span<T> grad, int ldGrad,
        CrossEntropyOptions? options = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
        SoftTargets(rows, cols, logits, ldLogits, target, ldTarget, weight, gradOutput, loss, grad, ldGrad, options);

    private static unsafe void SoftTargets<T>(int rows, int cols, ReadOnlySpan<T> logits, int ldLogits,
        ReadOnlySpan<T> target, int ldTarget, ReadOnlySpan<T> weight, ReadOnlySpan<T> gradOutput, Span<T> loss, Span<T> grad, int ldGrad,
        CrossEntropyOptions? options)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        options ??= CrossEntropyOptions.Default;
        RequireSupported<T>();
        RequireLength(logits.Length, rows, cols, ldLogits, "logits");
        RequireLength(target.Length, rows, cols, ldTarget, "target");
        RequireCounts(rows, rows, weight.Length, cols, gradOutput.Length, loss.Length, grad.Length, options);
        if (!grad.IsEmpty)
        {
            RequireLength(grad.Length, rows, cols, ldGrad, "grad");
        }
        fixed (T* z = logits)
        fixed (T* p = target)
        fixed (T* w = weight)
        fixed (T* u = gradOutput)
        fixed (T* l = loss)
        fixed (T* g = grad)
        {
            if (typeof(T) == typeof(Half))
            {
                HalfSoftTargets(rows, cols, (Half*)z, ldLogits, (Half*)p, ldTarget, (Half*)w, (Half*)u, (Half*)l, (Half*)g, ldGrad, options);
                return;
            }
            Execute<SoftTargetCrossEntropyOperation<T, LossOptions>, T>(
                new(rows, cols, z, ldLogits, p, ldTarget, w, options.ToLossOptions(u), l, g, ldGrad));
        }
    }

    private static void RequireCounts(int targetLength, int rows, int weightLength, int cols, int gradOutputLength,
        int lossLength, int gradLength, CrossEntropyOptions options)
    {
        RequireSomeOutput(rows, lossLength, gradLength);
        if (targetLength != rows)
        {
            throw new ArgumentException($"target has {targetLength} labels for {rows} rows.", "target");
        }
        if (weightLength != 0 && weightLength != cols)
        {
            throw new ArgumentException($"weight has {weightLength} elements for {cols} classes (pass an empty span for no weights).", "weight");
        }
        RequirePerRowCounts(rows, gradOutputLength, lossLength, options);
    }

    /// <summary>At least one of loss and grad (for rows &gt; 0).</summary>
    private static void RequireSomeOutput(int rows, int lossLength, int gradLength)
    {
        if (rows > 0 && lossLength == 0 && gradLength == 0)
        {
            throw new ArgumentException("loss and grad are both empty: ask for at least one of them.", "loss");
        }
    }

    /// <summary>gradOutput empty or one value per row; loss empty or as long as the reduction writes.</summary>
    private static void RequirePerRowCounts(int rows, int gradOutputLength, int lossLength, CrossEntropyOptions options)
    {
        if (gradOutputLength != 0 && gradOutputLength != rows)
        {
            throw new ArgumentException($"gradOutput has {gradOutputLength} values for {rows} rows (pass an empty span for the grad scale alone).", "gradOutput");
        }
        int lossCount = options.Reduction == Reduction.None ? rows : 1;
        if (lossLength != 0 && lossLength < lossCount)
        {
            throw new ArgumentException($"loss has {lossLength} elements; reduction {options.Reduction} writes {lossCount}.", "loss");
        }
    }
}
