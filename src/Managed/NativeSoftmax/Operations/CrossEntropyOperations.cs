using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.InteropServices;
using NativeSoftmax.Kernels;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Operations;

/// <summary>The checks and scalars shared by the hard-label and soft-target cross-entropy.</summary>
internal static unsafe class CrossEntropyValidation
{
    /// <summary>Everything but the targets: shape, logits, weight, options, outputs, overlaps.</summary>
    public static bool Check<T>(long rows, long cols, T* logits, long ldLogits, Region target, T* weight,
        LossOptions options, T* loss, T* grad, long ldGrad, bool gradMayBeTarget,
        out double weightSum, [NotNullWhen(false)] out Failure? failure)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        weightSum = cols;
        if (!Checks.Shape(rows, cols, out failure)
            || !Checks.NotNull(logits, "logits", out failure)
            || !Checks.Matrix(rows, cols, ldLogits, "ld_logits", sizeof(T), out failure)
            || !Checks.NotNull(target.Start, target.Name, out failure))
        {
            return false;
        }
        if (loss == null && grad == null)
        {
            failure = new(Status.NullPointer, "loss", "loss and grad are both NULL: ask for at least one of them.");
            return false;
        }
        if (grad != null && !Checks.Matrix(rows, cols, ldGrad, "ld_grad", sizeof(T), out failure))
        {
            return false;
        }
        if (options.Reduction is not (Reduction.None or Reduction.Sum or Reduction.Mean))
        {
            failure = new(Status.InvalidArgument, "reduction", $"reduction must be none (0), sum (1) or mean (2), got {(int)options.Reduction}.");
            return false;
        }
        if (!(options.LabelSmoothing >= 0.0 && options.LabelSmoothing <= 1.0))
        {
            failure = new(Status.InvalidArgument, "label_smoothing", $"label_smoothing must be in [0, 1], got {options.LabelSmoothing}.");
            return false;
        }
        if (!double.IsFinite(options.GradScale))
        {
            failure = new(Status.InvalidArgument, "grad_scale", $"grad_scale must be finite, got {options.GradScale}.");
            return false;
        }
        if (weight != null)
        {
            weightSum = 0;
            for (long j = 0; j < cols; j++)
            {
                if (!T.IsFinite(weight[j]))
                {
                    failure = new(Status.InvalidArgument, "weight", $"weight[{j}] is {weight[j]}; class weights must be finite.");
                    return false;
                }
                weightSum += double.CreateTruncating(weight[j]);
            }
        }

        long lossCount = options.Reduction == Reduction.None ? rows : 1;
        var logitsRegion = Region.Matrix(logits, rows, cols, ldLogits, "logits");
        var weightRegion = new Region(weight, weight == null ? 0 : cols, cols, "weight");
        var lossRegion = new Region(loss, loss == null ? 0 : lossCount, lossCount, "loss");
        var gradRegion = grad == null ? new Region(null, 0, 0, "grad") : Region.Matrix(grad, rows, cols, ldGrad, "grad");
        return Checks.Disjoint(gradRegion, logitsRegion, sizeof(T), exactAllowed: true, out failure)
            && Checks.Disjoint(gradRegion, target, sizeof(T), exactAllowed: gradMayBeTarget, out failure)
            && Checks.Disjoint(gradRegion, weightRegion, sizeof(T), exactAllowed: false, out failure)
            && Checks.Disjoint(lossRegion, logitsRegion, sizeof(T), exactAllowed: false, out failure)
            && Checks.Disjoint(lossRegion, target, sizeof(T), exactAllowed: false, out failure)
            && Checks.Disjoint(lossRegion, weightRegion, sizeof(T), exactAllowed: false, out failure)
            && Checks.Disjoint(lossRegion, gradRegion, sizeof(T), exactAllowed: false, out failure);
    }

    private static readonly double PositiveNaN = BitConverter.Int64BitsToDouble(0x7FF8_0000_0000_0000);

    /// <summary>Writes the reduced loss (sum or mean) from the float64 total.</summary>
    public static void StoreReduced<T>(T* loss, Reduction reduction, double total, double divisor)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (loss != null && reduction != Reduction.None)
        {
            double reduced = reduction == Reduction.Sum ? total : total / divisor;
            // 0/0 (a mean over no rows) is the x86 "default NaN", whose sign bit is set (so is
            // double.NaN's): give the positive quiet NaN, which C prints as "nan", not "-nan".
            *loss = T.CreateTruncating(double.IsNaN(reduced) ? PositiveNaN : reduced);
        }
    }
}

/// <summary>
/// Fused softmax cross-entropy with hard (int64) labels, PyTorch's normalisation; the gradient is
/// the seed's o·Σy − y for the weighted, smoothed target y.
/// </summary>
internal unsafe struct HardLabelCrossEntropyOperation<T>(long rows, long cols, T* logits, long ldLogits,
    long* target, T* weight, LossOptions options, T* loss, T* grad, long ldGrad)
    : IRowOperation<T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    private double _weightSum;
    private double _divisor;

    public readonly long Cols => cols;

    public bool Prepare([NotNullWhen(false)] out Failure? failure)
    {
        if (!CrossEntropyValidation.Check(rows, cols, logits, ldLogits, new Region(target, rows, rows, "target", sizeof(long)),
                weight, options, loss, grad, ldGrad, gradMayBeTarget: false, out _weightSum, out failure))
        {
            return false;
        }
        _divisor = 0;
        for (long r = 0; r < rows; r++)
        {
            long t = target[r];
            if (t == options.IgnoreIndex)
            {
                continue;
            }
            if (t < 0 || t >= cols)
            {
                failure = new(Status.LabelOutOfRange, "target",
                    $"target[{r}] = {t} is outside [0, {cols}) and is not ignore_index ({options.IgnoreIndex}).");
                return false;
            }
            _divisor += weight == null ? 1.0 : double.CreateTruncating(weight[t]);
        }
        return true;
    }

    public readonly void Run<TVec>() where TVec : struct, IVec<TVec, T>
    {
        nuint n = (nuint)cols;
        double epsilon = options.LabelSmoothing;
        double keep = 1.0 - epsilon, spread = epsilon / cols;
        double scale = options.Reduction == Reduction.Mean ? options.GradScale / _divisor : options.GradScale;
        double total = 0;
        bool shortRow = ShortRow<TVec, T>.Fits(n); // the same for every row: decided once
        for (long r = 0; r < rows; r++)
        {
            T* z = logits + r * ldLogits;
            T* g = grad == null ? null : grad + r * ldGrad;
            long t = target[r];
            if (t == options.IgnoreIndex)
            {
                if (loss != null && options.Reduction == Reduction.None)
                {
                    loss[r] = T.Zero;
                }
                if (g != null)
                {
                    NativeMemory.Clear(g, (nuint)cols * (nuint)sizeof(T));
                }
                continue;
            }

            // Everything that reads the logits comes before the pass that may overwrite them (grad
            // exactly over logits): z_t, the row maximum and the smoothing term; then exp(z − max)
            // goes into the gradient row while it is summed, and a last pass turns it into the
            // gradient. One exponential per element.
            T zt = z[t];
            T max;
            double sum, gaps;
            if (shortRow)
            {
                sum = double.CreateTruncating(ShortRow<TVec, T>.CrossEntropyStatistics(z, weight, g, epsilon > 0, n, out max, out T shortGaps));
                gaps = double.CreateTruncating(shortGaps);
            }
            else
            {
                max = RowLoop<TVec, T>.Max(z, n);
                gaps = epsilon > 0 ? RowLoop<TVec, T>.Sum(new WeightedGaps<TVec, T>(z, max, weight), n) : 0.0;
                var exps = new ExpShifted<TVec, T>(z, max);
                sum = g != null ? RowLoop<TVec, T>.StoreAndSum(exps, g, n) : RowLoop<TVec, T>.Sum(exps, n);
            }
            double gapT = double.CreateTruncating(max) - double.CreateTruncating(zt); // in float64: float32 max − z_t can overflow
            double logSum = Math.Log(sum);
            double wt = weight == null ? 1.0 : double.CreateTruncating(weight[t]);
            // lse − z_t = (max − z_t) + log Σ exp(z − max).
            double rowLoss = keep * wt * (gapT + logSum);
            if (epsilon > 0)
            {
                rowLoss += spread * (gaps + _weightSum * logSum);
            }
            total += rowLoss;
            if (loss != null && options.Reduction == Reduction.None)
            {
                loss[r] = T.CreateTruncating(rowLoss);
            }

            if (g != null)
            {
                // s·(o_j·Σy − y_j) with Σy = (1 − ε)·w_t + (ε/C)·Σw and y_j = (ε/C)·w_j (+ (1 − ε)·w_t at t),
                // from g_j = exp(z_j − max) and o_j = g_j / Σexp.
                double targetSum = keep * wt + spread * _weightSum;
                var gradient = new ScaledMinusWeights<TVec, T>(g,
                    T.CreateTruncating(scale * targetSum / sum), T.CreateTruncating(scale * spread), weight);
                if (shortRow)
                {
                    ShortRow<TVec, T>.Store(gradient, g, n);
                }
                else
                {
                    RowLoop<TVec, T>.Store(gradient, g, n);
                }
                g[t] -= T.CreateTruncating(scale * keep * wt);
            }
        }
        CrossEntropyValidation.StoreReduced(loss, options.Reduction, total, _divisor);
    }
}

/// <summary>
/// Fused softmax cross-entropy with soft (probability) targets: loss Σ ŷ·(lse − z), gradient the
/// seed's general form s·(o·Σŷ − ŷ), exact when the targets do not sum to 1.
/// </summary>
internal readonly unsafe struct SoftTargetCrossEntropyOperation<T>(long rows, long cols, T* logits, long ldLogits,
    T* target, long ldTarget, T* weight, LossOptions options, T* loss, T* grad, long ldGrad)
    : IRowOperation<T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    public long Cols => cols;

    public bool Prepare([NotNullWhen(false)] out Failure? failure) =>
        Checks.Shape(rows, cols, out failure)
        && Checks.NotNull(target, "target", out failure)
        && Checks.Matrix(rows, cols, ldTarget, "ld_target", sizeof(T), out failure)
        && CrossEntropyValidation.Check(rows, cols, logits, ldLogits, Region.Matrix(target, rows, cols, ldTarget, "target"),
            weight, options, loss, grad, ldGrad, gradMayBeTarget: true, out _, out failure);

    public void Run<TVec>() where TVec : struct, IVec<TVec, T>
    {
        nuint n = (nuint)cols;
        double epsilon = options.LabelSmoothing;
        T keep = T.CreateTruncating(1.0 - epsilon), spread = T.CreateTruncating(epsilon / cols);
        double scale = options.Reduction == Reduction.Mean ? options.GradScale / rows : options.GradScale;
        double total = 0;
        for (long r = 0; r < rows; r++)
        {
            T* z = logits + r * ldLogits;
            T* p = target + r * ldTarget;
            var targets = new SmoothedTargets<TVec, T>(p, keep, spread, weight);
            double targetSum = RowLoop<TVec, T>.Sum(targets, n);
            if (targetSum == 0 && AllTargetsZero(p, keep, spread))
            {
                // A row that asks for nothing contributes nothing, whatever its logits (even all −∞).
                if (loss != null && options.Reduction == Reduction.None)
                {
                    loss[r] = T.Zero;
                }
                if (grad != null)
                {
                    NativeMemory.Clear(grad + r * ldGrad, (nuint)cols * (nuint)sizeof(T));
                }
                continue;
            }
            T max = RowLoop<TVec, T>.Max(z, n);
            double sum = RowLoop<TVec, T>.Sum(new ExpShifted<TVec, T>(z, max), n);
            double gaps = RowLoop<TVec, T>.Sum(new SoftTargetGaps<TVec, T>(z, max, targets), n);
            // Σ ŷ·(lse − z) = Σ ŷ·(max − z) + Σŷ·log Σexp; an all-zero target row contributes 0.
            double rowLoss = targetSum == 0 ? gaps : gaps + targetSum * Math.Log(sum);
            total += rowLoss;
            if (loss != null && options.Reduction == Reduction.None)
            {
                loss[r] = T.CreateTruncating(rowLoss);
            }
            if (grad != null)
            {
                var gradient = new SoftTargetGradient<TVec, T>(z, max,
                    T.CreateTruncating(scale * targetSum / sum), T.CreateTruncating(scale), targets);
                RowLoop<TVec, T>.Store(gradient, grad + r * ldGrad, n);
            }
        }
        CrossEntropyValidation.StoreReduced(loss, options.Reduction, total, rows);
    }

    /// <summary>Whether every ŷ_j = ((1 − ε)·p_j + ε/C)·w_j of a row is 0 (rare: only checked when Σŷ = 0).</summary>
    private readonly bool AllTargetsZero(T* p, T keep, T spread)
    {
        for (long j = 0; j < cols; j++)
        {
            T y = (keep * p[j] + spread) * (weight == null ? T.One : weight[j]);
            if (y != T.Zero)
            {
                return false;
            }
        }
        return true;
    }
}
