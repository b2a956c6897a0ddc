using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using NativeSoftmax.Kernels;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Operations;

/// <summary>
/// The last step of the vocabulary-split cross-entropy: from each row's merged
/// <see cref="CrossEntropyStats"/> (over the whole vocabulary), the loss and one shard's gradient
/// s·(o_j·Σy − y_j) (docs/derivation.md §4 and §6). The losses depend on the statistics, the
/// options and the labels only, and are added in row order on the calling thread, so every
/// shard's call gives the same bits. Prepare checks the arguments and computes the mean's divisor.
/// </summary>
internal unsafe struct CrossEntropyFinishOperation<T, TOptions>(VocabularyShard<T> shard, CrossEntropyStats* stats,
    TOptions optionsSource, T* loss, T* grad, long ldGrad)
    : IRowOperation<CrossEntropyFinishOperation<T, TOptions>, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TOptions : struct, ILossOptionsSource
{
    // What Prepare computes; only a prepared copy has them.
    private LossOptions _options;
    private double _divisor;

    public readonly long Rows => shard.Rows;

    public readonly long Cols => shard.Cols;

    public readonly bool Prepare(out Prepared<CrossEntropyFinishOperation<T, TOptions>> prepared, [NotNullWhen(false)] out Failure? failure)
    {
        prepared = default;
        CrossEntropyFinishOperation<T, TOptions> ready = this;
        long rows = shard.Rows, cols = shard.Cols;
        if (!optionsSource.TryRead(out ready._options, out failure)
            || !shard.Check(ready._options, out _, out failure)
            || !Checks.Required(stats, rows, "stats", out failure))
        {
            return false;
        }
        if (loss == null && grad == null && rows > 0)
        {
            failure = new(Status.NullPointer, "loss", "loss and grad are both NULL: ask for at least one of them.");
            return false;
        }
        if (grad != null && !shard.ShardMatrix(ldGrad, "ld_grad", out failure))
        {
            return false;
        }
        long lossCount = ready._options.Reduction == Reduction.None ? rows : 1;
        var lossRegion = new Region(loss, loss == null ? 0 : lossCount, lossCount, "loss");
        var gradRegion = grad == null ? new Region(null, 0, 0, "grad") : Region.Matrix(grad, rows, cols, ldGrad, "grad");
        var statsRegion = new Region(stats, rows, rows, "stats", sizeof(CrossEntropyStats));
        var gradOutputRegion = new Region(ready._options.GradOutput, rows, rows, "grad_output");
        if (!Checks.Disjoint(gradRegion, shard.LogitsRegion, sizeof(T), exactAllowed: true, out failure)
            || !Checks.Disjoint(gradRegion, shard.TargetRegion, sizeof(T), exactAllowed: shard.SoftTargets, out failure)
            || !Checks.Disjoint(gradRegion, shard.WeightRegion, sizeof(T), exactAllowed: false, out failure)
            || !Checks.Disjoint(gradRegion, statsRegion, sizeof(T), exactAllowed: false, out failure)
            || !Checks.Disjoint(gradRegion, gradOutputRegion, sizeof(T), exactAllowed: false, out failure)
            || !Checks.Disjoint(lossRegion, shard.LogitsRegion, sizeof(T), exactAllowed: false, out failure)
            || !Checks.Disjoint(lossRegion, shard.TargetRegion, sizeof(T), exactAllowed: false, out failure)
            || !Checks.Disjoint(lossRegion, shard.WeightRegion, sizeof(T), exactAllowed: false, out failure)
            || !Checks.Disjoint(lossRegion, statsRegion, sizeof(T), exactAllowed: false, out failure)
            || !Checks.Disjoint(lossRegion, gradOutputRegion, sizeof(T), exactAllowed: false, out failure)
            || !Checks.Disjoint(lossRegion, gradRegion, sizeof(T), exactAllowed: false, out failure))
        {
            return false;
        }
        if (shard.HardLabels)
        {
            for (long r = 0; r < rows; r++)
            {
                if (shard.Labels[r] != ready._options.IgnoreIndex)
                {
                    ready._divisor += stats[r].LabelWeight;
                }
            }
        }
        else
        {
            ready._divisor = rows;
        }
        prepared = new(ready);
        return true;
    }

    public static double Run<TVec>(in Prepared<CrossEntropyFinishOperation<T, TOptions>> prepared, long first, long end)
        where TVec : struct, IVec<TVec, T>
    {
        prepared.Operation.RunRows<TVec>(first, end);
        return 0;
    }

    /// <summary>The losses, from the statistics alone, in row order (the gradient rows are done).</summary>
    public static void Finish(in Prepared<CrossEntropyFinishOperation<T, TOptions>> prepared, double total) =>
        prepared.Operation.StoreLosses();

    /// <summary>Whether row r asks for nothing: an ignored label, or soft targets all 0.</summary>
    private readonly bool AsksForNothing(long r) =>
        shard.HardLabels ? shard.Labels[r] == _options.IgnoreIndex : stats[r].HasTarget == 0;

    /// <summary>Σ_j y_j·(lse − z_j) = Σ y·(M − z) + Σy·log Σ exp(z − M); NaN for a row with no finite
    /// maximum (every logit −∞), as the unsplit operations.</summary>
    private static double RowLoss(in CrossEntropyStats s)
    {
        if (s.CountAtMax == 0)
        {
            return double.NaN;
        }
        var sum = new ExpSum(s.SumBelowMax, s.CountAtMax);
        return s.TargetSum == 0 ? s.TargetGaps : s.TargetGaps + s.TargetSum * sum.Log;
    }

    private readonly void StoreLosses()
    {
        if (loss == null)
        {
            return;
        }
        bool storeRowLosses = _options.Reduction == Reduction.None;
        double total = 0;
        for (long r = 0; r < shard.Rows; r++)
        {
            double rowLoss = AsksForNothing(r) ? 0 : RowLoss(stats[r]);
            total += rowLoss;
            if (storeRowLosses)
            {
                loss[r] = VecMath.FlushSubnormal(T.CreateTruncating(rowLoss));
            }
        }
        CrossEntropyValidation.StoreReduced(loss, _options.Reduction, total, _divisor);
    }

    [MethodImpl(MethodImplOptions.NoInlining)] // one compilation unit per width
    private readonly void RunRows<TVec>(long first, long end)
        where TVec : struct, IVec<TVec, T>
    {
        if (grad == null || shard.Cols == 0)
        {
            return; // only the losses, which Finish stores
        }
        nuint n = (nuint)shard.Cols;
        double epsilon = _options.LabelSmoothing;
        double keep = 1.0 - epsilon, spread = epsilon / shard.Vocab;
        double scale = CrossEntropyValidation.GradientScale(_options, _divisor);
        T* weight = shard.Weight;
        for (long r = first; r < end; r++)
        {
            T* z = shard.Logits + r * shard.LdLogits;
            T* g = grad + r * ldGrad;
            if (AsksForNothing(r))
            {
                NativeMemory.Clear(g, n * (nuint)sizeof(T));
                continue;
            }
            CrossEntropyStats s = stats[r];
            if (s.CountAtMax == 0)
            {
                // No finite maximum in the whole row (every logit −∞): NaN, as the unsplit operations.
                new Span<T>(g, checked((int)n)).Fill(T.NaN);
                continue;
            }
            var sum = new ExpSum(s.SumBelowMax, s.CountAtMax);
            double expTotal = sum.Total;
            T max = T.CreateTruncating(s.Max);
            double rowScale = CrossEntropyValidation.RowScale<T>(_options, scale, r);
            double targetSum = s.TargetSum;
            if (shard.HardLabels)
            {
                long t = shard.Labels[r];
                bool holds = shard.Holds(t);
                long j = t - shard.FirstCol;
                // Read before the store, which may overwrite the logits (grad exactly over them).
                double et = holds ? double.CreateTruncating(TVec.MaxLanes(
                    VecMath.ExpOfDifference<TVec, T>(TVec.Create(z[j]), TVec.Create(max)))) : 0;
                RowLoop<TVec, T>.Store(new ExpShiftedMinusWeights<TVec, T>(z, max, T.CreateTruncating(rowScale * targetSum / expTotal),
                    T.CreateTruncating(rowScale * spread), weight), g, n);
                if (holds)
                {
                    // As the unsplit operation: (e_t·(Σy − y_t) − y_t·(S − e_t))/S, which keeps a
                    // dominant class's −y_t·(S − 1)/S.
                    double wt = weight == null ? 1.0 : double.CreateTruncating(weight[j]);
                    double yt = (keep + spread) * wt;
                    double gt = rowScale * (et * (targetSum - yt) - yt * sum.Excluding(et)) / expTotal;
                    g[j] = VecMath.FlushSubnormal(T.CreateTruncating(gt));
                }
            }
            else
            {
                var targets = new SmoothedTargets<TVec, T>(shard.Target + r * shard.LdTarget, T.CreateTruncating(keep),
                    T.CreateTruncating(spread), weight);
                var gradient = new SoftTargetGradient<TVec, T, ExpShifted<TVec, T>>(new ExpShifted<TVec, T>(z, max), targets,
                    new SoftTargetGradientTerms<T>(rowScale, targetSum, sum));
                RowLoop<TVec, T>.Store(gradient, g, n);
            }
        }
    }
}
