using System.Numerics;
using NativeSoftmax.Operations;

namespace NativeSoftmax;

// The vocabulary-split cross-entropy (docs/derivation.md §7): partial statistics per shard of
// columns, merged across shards, then each shard's loss and gradient. native/include/nativesoftmax.h
// documents the same functions (nsm_cross_entropy_partial_*, _merge, _finish_*).
public static partial class SoftmaxPrimitives
{
    /// <summary>
    /// Each row's <see cref="CrossEntropyStats"/> over one shard of the vocabulary, hard labels:
    /// the logits are columns [firstCol, firstCol + cols) of a [rows × vocab] matrix. Merge the
    /// shards' statistics with <see cref="CrossEntropyMerge"/>, then call
    /// <see cref="CrossEntropyFinish{T}(int, int, int, int, ReadOnlySpan{T}, int, ReadOnlySpan{long}, ReadOnlySpan{T}, ReadOnlySpan{CrossEntropyStats}, ReadOnlySpan{T}, Span{T}, Span{T}, int, CrossEntropyOptions?)"/>
    /// on each shard. The result equals <see cref="CrossEntropy{T}(int, int, ReadOnlySpan{T}, int, ReadOnlySpan{long}, ReadOnlySpan{T}, Span{T}, Span{T}, int, CrossEntropyOptions?)"/>
    /// on the whole matrix to its stated tolerance.
    /// </summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    /// <param name="rows">Number of rows, ≥ 0.</param>
    /// <param name="cols">The shard's columns, ≥ 0 (0: every row gets <see cref="CrossEntropyStats.Identity"/>).</param>
    /// <param name="firstCol">The shard's first column in the vocabulary, in [0, vocab − cols].</param>
    /// <param name="vocab">The number of classes of the whole vocabulary, ≥ 1 (label smoothing spreads ε/vocab).</param>
    /// <param name="logits">The shard's logits, row r at <c>r·ldLogits</c>.</param>
    /// <param name="ldLogits">Leading dimension of <paramref name="logits"/>, ≥ cols.</param>
    /// <param name="target">rows class indices of the whole vocabulary, in [0, vocab), or the ignore index.</param>
    /// <param name="weight">The shard's cols class weights (finite), or empty for all ones.</param>
    /// <param name="stats">Receives rows statistics.</param>
    /// <param name="options">ignore_index and label_smoothing (the other options are checked, and used by the finish); null for the defaults.</param>
    /// <exception cref="ArgumentOutOfRangeException">A bad shape or leading dimension, or a label outside [0, vocab).</exception>
    /// <exception cref="ArgumentException">A bad option or weight, a short span, or overlapping arguments.</exception>
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> is not float or double.</exception>
    public static unsafe void CrossEntropyPartial<T>(int rows, int cols, int firstCol, int vocab, ReadOnlySpan<T> logits, int ldLogits,
        ReadOnlySpan<long> target, ReadOnlySpan<T> weight, Span<CrossEntropyStats> stats, CrossEntropyOptions? options = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        options ??= CrossEntropyOptions.Default;
        RequireShard<T>(rows, cols, logits.Length, ldLogits, weight.Length, stats.Length);
        if (target.Length != rows)
        {
            throw new ArgumentException($"target has {target.Length} labels for {rows} rows.", nameof(target));
        }
        fixed (T* z = logits)
        fixed (long* t = target)
        fixed (T* w = weight)
        fixed (CrossEntropyStats* s = stats)
        {
            Execute<CrossEntropyPartialOperation<T, LossOptions>, T>(
                new(new(rows, cols, firstCol, vocab, z, ldLogits, t, null, 0, w), options.ToLossOptions(), s));
        }
    }

    /// <summary>
    /// Each row's <see cref="CrossEntropyStats"/> over one shard of the vocabulary, soft targets
    /// (the shard's columns of them, [rows × cols], leading dimension <paramref name="ldTarget"/>).
    /// Otherwise as the hard-label overload; ignore_index is not used.
    /// </summary>
    /// <inheritdoc cref="CrossEntropyPartial{T}(int, int, int, int, ReadOnlySpan{T}, int, ReadOnlySpan{long}, ReadOnlySpan{T}, Span{CrossEntropyStats}, CrossEntropyOptions?)"/>
    public static unsafe void CrossEntropyPartial<T>(int rows, int cols, int firstCol, int vocab, ReadOnlySpan<T> logits, int ldLogits,
        ReadOnlySpan<T> target, int ldTarget, ReadOnlySpan<T> weight, Span<CrossEntropyStats> stats, CrossEntropyOptions? options = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        options ??= CrossEntropyOptions.Default;
        RequireShard<T>(rows, cols, logits.Length, ldLogits, weight.Length, stats.Length);
        RequireShardLength(target.Length, rows, cols, ldTarget, "target");
        fixed (T* z = logits)
        fixed (T* p = target)
        fixed (T* w = weight)
        fixed (CrossEntropyStats* s = stats)
        {
            Execute<CrossEntropyPartialOperation<T, LossOptions>, T>(
                new(new(rows, cols, firstCol, vocab, z, ldLogits, null, p, ldTarget, w) { SoftTargets = true }, options.ToLossOptions(), s));
        }
    }

    /// <summary>
    /// merged[r] = <see cref="CrossEntropyStats.Merge"/>(a[r], b[r]) for every row: the statistics
    /// of two disjoint sets of columns combined. <paramref name="merged"/> may be exactly
    /// <paramref name="a"/> or <paramref name="b"/>. Deterministic; associative up to rounding, so
    /// merge in a fixed order (e.g. rank order) for the same bits everywhere.
    /// </summary>
    /// <exception cref="ArgumentException">The spans differ in length, or merged partly overlaps a or b.</exception>
    public static unsafe void CrossEntropyMerge(ReadOnlySpan<CrossEntropyStats> a, ReadOnlySpan<CrossEntropyStats> b, Span<CrossEntropyStats> merged)
    {
        if (b.Length != a.Length || merged.Length != a.Length)
        {
            throw new ArgumentException($"a, b and merged must hold the same number of rows; they hold {a.Length}, {b.Length} and {merged.Length}.", nameof(merged));
        }
        fixed (CrossEntropyStats* pa = a)
        fixed (CrossEntropyStats* pb = b)
        fixed (CrossEntropyStats* pm = merged)
        {
            var operation = new CrossEntropyMergeOperation(a.Length, pa, pb, pm);
            if (!operation.Check(out Failure? failure))
            {
                throw failure.ToException();
            }
            operation.Run();
        }
    }

    /// <summary>
    /// The loss and one shard's gradient from the merged statistics of every row (hard labels):
    /// with <paramref name="stats"/> merged over the whole vocabulary, the loss is that of
    /// <see cref="CrossEntropy{T}(int, int, ReadOnlySpan{T}, int, ReadOnlySpan{long}, ReadOnlySpan{T}, ReadOnlySpan{T}, Span{T}, Span{T}, int, CrossEntropyOptions?)"/>
    /// on the whole matrix, the same bits from every shard's call, and <paramref name="grad"/> its
    /// gradient's columns [firstCol, firstCol + cols).
    /// </summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="double"/>.</typeparam>
    /// <param name="rows">Number of rows, ≥ 0.</param>
    /// <param name="cols">The shard's columns, ≥ 0.</param>
    /// <param name="firstCol">The shard's first column in the vocabulary, in [0, vocab − cols].</param>
    /// <param name="vocab">The number of classes of the whole vocabulary, ≥ 1.</param>
    /// <param name="logits">The shard's logits (as given to the partial call).</param>
    /// <param name="ldLogits">Leading dimension of <paramref name="logits"/>, ≥ cols.</param>
    /// <param name="target">rows class indices of the whole vocabulary, or the ignore index.</param>
    /// <param name="weight">The shard's cols class weights, or empty for all ones.</param>
    /// <param name="stats">rows merged statistics (every shard's, merged).</param>
    /// <param name="gradOutput">rows upstream gradients, reduction none only; empty for the grad scale alone.</param>
    /// <param name="loss">Receives rows losses for <see cref="Reduction.None"/>, else one value; empty to skip.</param>
    /// <param name="grad">Receives the shard's gradient (rows × cols); empty to skip; may be exactly <paramref name="logits"/>.</param>
    /// <param name="ldGrad">Leading dimension of <paramref name="grad"/>, ≥ cols.</param>
    /// <param name="options">Reduction, ignore_index, label_smoothing and grad scale, as given to the partial call; null for the defaults.</param>
    /// <exception cref="ArgumentOutOfRangeException">A bad shape or leading dimension, or a label outside [0, vocab).</exception>
    /// <exception cref="ArgumentException">A bad option or weight, a short span, both outputs empty, or overlapping arguments.</exception>
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> is not float or double.</exception>
    public static unsafe void CrossEntropyFinish<T>(int rows, int cols, int firstCol, int vocab, ReadOnlySpan<T> logits, int ldLogits,
        ReadOnlySpan<long> target, ReadOnlySpan<T> weight, ReadOnlySpan<CrossEntropyStats> stats, ReadOnlySpan<T> gradOutput,
        Span<T> loss, Span<T> grad, int ldGrad, CrossEntropyOptions? options = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        options ??= CrossEntropyOptions.Default;
        RequireShard<T>(rows, cols, logits.Length, ldLogits, weight.Length, stats.Length);
        if (target.Length != rows)
        {
            throw new ArgumentException($"target has {target.Length} labels for {rows} rows.", nameof(target));
        }
        RequireFinishOutputs(rows, cols, gradOutput.Length, loss.Length, grad.Length, ldGrad, options);
        fixed (T* z = logits)
        fixed (long* t = target)
        fixed (T* w = weight)
        fixed (CrossEntropyStats* s = stats)
        fixed (T* u = gradOutput)
        fixed (T* l = loss)
        fixed (T* g = grad)
        {
            Execute<CrossEntropyFinishOperation<T, LossOptions>, T>(
                new(new(rows, cols, firstCol, vocab, z, ldLogits, t, null, 0, w), s, options.ToLossOptions(u), l, g, ldGrad));
        }
    }

    /// <summary>
    /// The loss and one shard's gradient from the merged statistics of every row, soft targets
    /// (the shard's columns, leading dimension <paramref name="ldTarget"/>; <paramref name="grad"/>
    /// may be exactly <paramref name="logits"/> or <paramref name="target"/>). Otherwise as the
    /// hard-label overload.
    /// </summary>
    /// <inheritdoc cref="CrossEntropyFinish{T}(int, int, int, int, ReadOnlySpan{T}, int, ReadOnlySpan{long}, ReadOnlySpan{T}, ReadOnlySpan{CrossEntropyStats}, ReadOnlySpan{T}, Span{T}, Span{T}, int, CrossEntropyOptions?)"/>
    public static unsafe void CrossEntropyFinish<T>(int rows, int cols, int firstCol, int vocab, ReadOnlySpan<T> logits, int ldLogits,
        ReadOnlySpan<T> target, int ldTarget, ReadOnlySpan<T> weight, ReadOnlySpan<CrossEntropyStats> stats, ReadOnlySpan<T> gradOutput,
        Span<T> loss, Span<T> grad, int ldGrad, CrossEntropyOptions? options = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        options ??= CrossEntropyOptions.Default;
        RequireShard<T>(rows, cols, logits.Length, ldLogits, weight.Length, stats.Length);
        RequireShardLength(target.Length, rows, cols, ldTarget, "target");
        RequireFinishOutputs(rows, cols, gradOutput.Length, loss.Length, grad.Length, ldGrad, options);
        fixed (T* z = logits)
        fixed (T* p = target)
        fixed (T* w = weight)
        fixed (CrossEntropyStats* s = stats)
        fixed (T* u = gradOutput)
        fixed (T* l = loss)
        fixed (T* g = grad)
        {
            Execute<CrossEntropyFinishOperation<T, LossOptions>, T>(
                new(new(rows, cols, firstCol, vocab, z, ldLogits, null, p, ldTarget, w) { SoftTargets = true }, s,
                    options.ToLossOptions(u), l, g, ldGrad));
        }
    }

    private static void RequireShard<T>(int rows, int cols, int logitsLength, int ldLogits, int weightLength, int statsLength)
    {
        if (typeof(T) != typeof(float) && typeof(T) != typeof(double))
        {
            throw new NotSupportedException($"The vocabulary-split cross-entropy computes in float or double, not {typeof(T).Name}.");
        }
        RequireShardLength(logitsLength, rows, cols, ldLogits, "logits");
        if (weightLength != 0 && weightLength != cols)
        {
            throw new ArgumentException($"weight has {weightLength} elements for the shard's {cols} classes (pass an empty span for no weights).", "weight");
        }
        if (statsLength != rows)
        {
            throw new ArgumentException($"stats has {statsLength} rows for {rows} rows.", "stats");
        }
    }

    /// <summary>A shard's matrix: as <see cref="RequireLength"/>, and nothing to hold for an empty shard.</summary>
    private static void RequireShardLength(int length, int rows, int cols, int ld, string name)
    {
        if (cols > 0 && rows >= 0)
        {
            RequireLength(length, rows, cols, ld, name);
        }
    }

    private static void RequireFinishOutputs(int rows, int cols, int gradOutputLength, int lossLength, int gradLength, int ldGrad,
        CrossEntropyOptions options)
    {
        RequireSomeOutput(rows, lossLength, gradLength);
        RequirePerRowCounts(rows, gradOutputLength, lossLength, options);
        if (gradLength != 0)
        {
            RequireShardLength(gradLength, rows, cols, ldGrad, "grad");
        }
    }
}
