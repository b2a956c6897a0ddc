using System.Diagnostics.CodeAnalysis;
using System.Numerics;

namespace NativeSoftmax.Operations;

/// <summary>
/// Columns [FirstCol, FirstCol + Cols) of a row-major [Rows × Vocab] logits matrix, held as a
/// [Rows × Cols] matrix with leading dimension LdLogits, and their targets: hard labels (global
/// class indices, <see cref="Labels"/>) or the shard's columns of soft targets
/// (<see cref="Target"/>, ld <see cref="LdTarget"/>); one of the two is used. The vocabulary-split
/// operations (<see cref="CrossEntropyPartialOperation{T, TOptions}"/>,
/// <see cref="CrossEntropyFinishOperation{T, TOptions}"/>) share it and its checks.
/// </summary>
internal readonly unsafe struct VocabularyShard<T>(long rows, long cols, long firstCol, long vocab, T* logits, long ldLogits,
    long* labels, T* target, long ldTarget, T* weight)
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    public long Rows => rows;
    public long Cols => cols;
    public long FirstCol => firstCol;
    public long Vocab => vocab;
    public T* Logits => logits;
    public long LdLogits => ldLogits;
    public long* Labels => labels;
    public T* Target => target;
    public long LdTarget => ldTarget;
    public T* Weight => weight;

    /// <summary>Hard labels (else soft targets).</summary>
    public bool HardLabels => !SoftTargets;

    /// <summary>Soft targets: set by the soft-target entry points, which pass no labels.</summary>
    public bool SoftTargets { get; init; }

    public Region LogitsRegion => Region.Matrix(logits, rows, cols, ldLogits, "logits");

    public Region TargetRegion => SoftTargets
        ? Region.Matrix(target, rows, cols, ldTarget, "target")
        : new Region(labels, rows, rows, "target", sizeof(long));

    public Region WeightRegion => new(weight, weight == null ? 0 : cols, cols, "weight");

    /// <summary>
    /// Shape (rows ≥ 0, vocab ≥ 1, cols ≥ 0, 0 ≤ first_col ≤ vocab − cols), pointers, leading
    /// dimensions, options, weights (finite; their sum), and every hard label in [0, vocab) or
    /// ignore_index. Writes nothing.
    /// </summary>
    public bool Check(LossOptions options, out double weightSum, [NotNullWhen(false)] out Failure? failure)
    {
        weightSum = 0;
        if (rows < 0)
        {
            failure = new(Status.InvalidShape, "rows", $"rows must be >= 0, got {rows}.");
            return false;
        }
        if (vocab < 1)
        {
            failure = new(Status.InvalidShape, "vocab", $"vocab (the number of classes of the whole vocabulary) must be >= 1, got {vocab}.");
            return false;
        }
        if (cols < 0 || cols > vocab)
        {
            failure = new(Status.InvalidShape, "cols", $"cols (the shard's columns) must be in [0, vocab = {vocab}], got {cols}.");
            return false;
        }
        if (firstCol < 0 || firstCol > vocab - cols)
        {
            failure = new(Status.InvalidShape, "first_col",
                $"first_col ({firstCol}) must be in [0, vocab − cols] = [0, {vocab - cols}]: the shard's columns lie inside the vocabulary.");
            return false;
        }
        long shardRows = cols == 0 ? 0 : rows; // an empty shard reads no logits, targets or weights
        if (!Checks.Required(logits, shardRows, "logits", out failure)
            || !ShardMatrix(ldLogits, "ld_logits", out failure))
        {
            return false;
        }
        if (SoftTargets)
        {
            if (!Checks.Required(target, shardRows, "target", out failure)
                || !ShardMatrix(ldTarget, "ld_target", out failure))
            {
                return false;
            }
        }
        else if (!Checks.Required(labels, rows, "target", out failure))
        {
            return false;
        }
        if (!CrossEntropyValidation.Options(options, out failure)
            || !CrossEntropyValidation.Weights(weight, cols, out weightSum, out failure))
        {
            return false;
        }
        if (HardLabels)
        {
            for (long r = 0; r < rows; r++)
            {
                long t = labels[r];
                if (t != options.IgnoreIndex && (t < 0 || t >= vocab))
                {
                    failure = new(Status.LabelOutOfRange, "target",
                        $"target[{r}] = {t} is outside [0, vocab = {vocab}) and is not ignore_index ({options.IgnoreIndex}).");
                    return false;
                }
            }
        }
        return true;
    }

    /// <summary>A [rows × cols] matrix of the shard with leading dimension ld (≥ cols; ≥ 0 for an empty shard).</summary>
    public bool ShardMatrix(long ld, string ldName, [NotNullWhen(false)] out Failure? failure)
    {
        if (cols > 0)
        {
            return Checks.Matrix(rows, cols, ld, ldName, sizeof(T), out failure);
        }
        if (ld < 0)
        {
            failure = new Failure(Status.InvalidLeadingDimension, ldName, $"{ldName} ({ld}) must be >= cols ({cols}).");
            return false;
        }
        failure = null;
        return true;
    }

    /// <summary>Whether class <paramref name="label"/> is one of this shard's columns.</summary>
    public bool Holds(long label) => label >= firstCol && label - firstCol < cols;
}
