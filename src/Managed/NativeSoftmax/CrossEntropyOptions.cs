using System.Diagnostics.CodeAnalysis;
using NativeSoftmax.Operations;

namespace NativeSoftmax;

/// <summary>How per-row cross-entropy losses are reduced (PyTorch's <c>reduction</c>).</summary>
public enum Reduction
{
    /// <summary>No reduction: one loss per row.</summary>
    None = 0,

    /// <summary>The sum of the row losses.</summary>
    Sum = 1,

    /// <summary>
    /// The weighted mean: Σ row losses / Σ weight[target[r]] over the rows that are not ignored
    /// (their count without weights); for soft targets, Σ row losses / rows. NaN when the divisor
    /// is 0.
    /// </summary>
    Mean = 2,
}

/// <summary>
/// Options of the fused softmax cross-entropy, with PyTorch's names and defaults
/// (<c>torch.nn.functional.cross_entropy</c>).
/// </summary>
public sealed record CrossEntropyOptions
{
    /// <summary>The defaults: mean reduction, ignore_index −100, no label smoothing, grad scale 1.</summary>
    public static CrossEntropyOptions Default { get; } = new();

    /// <summary>How row losses are reduced; default <see cref="Reduction.Mean"/>.</summary>
    public Reduction Reduction { get; init; } = Reduction.Mean;

    /// <summary>Rows whose hard label equals this get zero loss and zero gradient and are left out
    /// of the mean; default −100. Not used with soft targets.</summary>
    public long IgnoreIndex { get; init; } = -100;

    /// <summary>ε in [0, 1]: the target becomes (1 − ε)·y + ε/C; default 0.</summary>
    public double LabelSmoothing { get; init; }

    /// <summary>The upstream gradient of the (reduced) loss, multiplying the whole gradient
    /// (PyTorch's grad_output for a scalar loss); must be finite; default 1.</summary>
    public double GradScale { get; init; } = 1.0;

    /// <summary>These options for an operation, with the per-row upstream gradients
    /// (nsm_cross_entropy_options.grad_output: [rows] values of the operation's element type, or
    /// null), which the .NET API takes as a span argument rather than an option.</summary>
    internal unsafe LossOptions ToLossOptions(void* gradOutput = null) =>
        new(Reduction, IgnoreIndex, LabelSmoothing, GradScale, gradOutput);
}

/// <summary>The options as the operations take them: a plain value, so the C exports build it
/// from nsm_cross_entropy_options without allocating. <see cref="GradOutput"/> points to [rows]
/// values of the operation's element type, or is null.</summary>
internal readonly unsafe struct LossOptions(Reduction reduction, long ignoreIndex, double labelSmoothing, double gradScale,
    void* gradOutput = null) : ILossOptionsSource
{
    public Reduction Reduction { get; } = reduction;

    public long IgnoreIndex { get; } = ignoreIndex;

    public double LabelSmoothing { get; } = labelSmoothing;

    public double GradScale { get; } = gradScale;

    /// <summary>Each row's upstream gradient (reduction none only), or null for grad_scale alone.</summary>
    public void* GradOutput { get; } = gradOutput;

    /// <summary>Options already read: always succeeds.</summary>
    public bool TryRead(out LossOptions options, [NotNullWhen(false)] out Failure? failure)
    {
        options = this;
        failure = null;
        return true;
    }
}
