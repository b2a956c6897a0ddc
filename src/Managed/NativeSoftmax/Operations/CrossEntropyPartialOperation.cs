using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.CompilerServices;
using NativeSoftmax.Kernels;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Operations;

/// <summary>
/// The first step of the vocabulary-split cross-entropy: each row's <see cref="CrossEntropyStats"/>
/// over one shard of columns (docs/derivation.md §7). The maximum and the exponentials split at 1
/// (<see cref="ExpSum"/>) as the unsplit operations form them; Σy and Σ y·(m − z) with y the weighted
/// target smoothed over the whole vocabulary (ε/vocab). Writes only the statistics.
/// </summary>
internal unsafe struct CrossEntropyPartialOperation<T, TOptions>(VocabularyShard<T> shard, TOptions optionsSource,
    CrossEntropyStats* stats)
    : IRowOperation<CrossEntropyPartialOperation<T, TOptions>, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TOptions : struct, ILossOptionsSource
{
    // What Prepare computes; only a prepared copy has them.
    private LossOptions _options;
    private double _weightSum;

    public readonly long Rows => shard.Rows;

    public readonly long Cols => shard.Cols;

    public readonly bool Prepare(out Prepared<CrossEntropyPartialOperation<T, TOptions>> prepared, [NotNullWhen(false)] out Failure? failure)
    {
        prepared = default;
        CrossEntropyPartialOperation<T, TOptions> ready = this;
        if (!optionsSource.TryRead(out ready._options, out failure)
            || !shard.Check(ready._options, out ready._weightSum, out failure)
            || !Checks.Required(stats, shard.Rows, "stats", out failure))
        {
            return false;
        }
        var statsRegion = new Region(stats, shard.Rows, shard.Rows, "stats", sizeof(CrossEntropyStats));
        if (!Checks.Disjoint(statsRegion, shard.LogitsRegion, sizeof(T), exactAllowed: false, out failure)
            || !Checks.Disjoint(statsRegion, shard.TargetRegion, sizeof(T), exactAllowed: false, out failure)
            || !Checks.Disjoint(statsRegion, shard.WeightRegion, sizeof(T), exactAllowed: false, out failure))
        {
            return false;
        }
        prepared = new(ready);
        return true;
    }

    public static double Run<TVec>(in Prepared<CrossEntropyPartialOperation<T, TOptions>> prepared, long first, long end)
        where TVec : struct, IVec<TVec, T>
    {
        prepared.Operation.RunRows<TVec>(first, end);
        return 0;
    }

    public static void Finish(in Prepared<CrossEntropyPartialOperation<T, TOptions>> prepared, double total)
    {
    }

    [MethodImpl(MethodImplOptions.NoInlining)] // one compilation unit per width
    private readonly void RunRows<TVec>(long first, long end)
        where TVec : struct, IVec<TVec, T>
    {
        nuint n = (nuint)shard.Cols;
        double epsilon = _options.LabelSmoothing;
        double keep = 1.0 - epsilon, spread = epsilon / shard.Vocab;
        T* weight = shard.Weight;
        // A long shard goes by LongRow's chunk pass, which reads it once for the maximum, the sum
        // and (hard labels with smoothing) the gaps; RowLoop reads it for each.
        bool byChunks = LongRow<TVec, T>.Fits(n) && LongRow<TVec, T>.KeepsExps(n);
        bool gapsByChunks = byChunks && shard.HardLabels && epsilon > 0;
        for (long r = first; r < end; r++)
        {
            CrossEntropyStats row = CrossEntropyStats.Identity;
            long t = shard.HardLabels ? shard.Labels[r] : 0;
            if (n == 0 || (shard.HardLabels && t == _options.IgnoreIndex))
            {
                // No column, or a row that asks for nothing: the identity.
                stats[r] = row;
                continue;
            }
            T* z = shard.Logits + r * shard.LdLogits;
            T max;
            ExpSum sum = default;
            double chunkGaps = 0;
            if (gapsByChunks)
            {
                sum = LongRow<TVec, T>.Statistics(z, null, n, null, weight, out max, out chunkGaps);
            }
            else if (byChunks)
            {
                sum = LongRow<TVec, T>.Statistics(z, null, n, null, out max);
            }
            else
            {
                max = RowLoop<TVec, T>.Max(z, n);
            }
            row.Max = double.CreateTruncating(max);
            bool finiteMax = !T.IsNegativeInfinity(max);
            if (finiteMax)
            {
                if (!byChunks)
                {
                    sum = RowLoop<TVec, T>.SumExps(new ExpShifted<TVec, T>(z, max), null, n);
                }
                row.CountAtMax = sum.AtMax;
                row.SumBelowMax = sum.Others;
            }
            else
            {
                // Every logit is −∞ (or NaN): no exponential counts; gaps relative to −∞ are 0, and
                // the merge turns them into +∞·Σy against a finite maximum.
                row.SumBelowMax = VecMath.ContainsNaN(z, n) ? double.NaN : 0;
            }
            if (shard.HardLabels)
            {
                row.TargetSum = epsilon > 0 ? spread * _weightSum : 0.0; // Σw may be ±∞ for finite weights
                if (finiteMax && epsilon > 0)
                {
                    double gaps = chunkGaps; // the chunks fall back to float64 themselves
                    if (!gapsByChunks)
                    {
                        gaps = RowLoop<TVec, T>.Sum(new WeightedGaps<TVec, T>(z, max, weight), n);
                        if (typeof(T) == typeof(float) && !double.IsFinite(gaps))
                        {
                            gaps = WideGaps.Weighted(z, max, weight, n);
                        }
                    }
                    row.TargetGaps = spread * gaps;
                }
                if (shard.Holds(t))
                {
                    long j = t - shard.FirstCol;
                    double wt = weight == null ? 1.0 : double.CreateTruncating(weight[j]);
                    row.LabelWeight = wt;
                    row.TargetSum += keep * wt;
                    if (finiteMax)
                    {
                        // In float64: float32 max − z_t can overflow.
                        row.TargetGaps += keep * wt * (row.Max - double.CreateTruncating(z[j]));
                    }
                }
            }
            else
            {
                T* p = shard.Target + r * shard.LdTarget;
                var targets = new SmoothedTargets<TVec, T>(p, T.CreateTruncating(keep), T.CreateTruncating(spread), weight);
                row.TargetSum = RowLoop<TVec, T>.Sum(targets, n);
                row.HasTarget = row.TargetSum != 0 || !AllTargetsZero(p, T.CreateTruncating(keep), T.CreateTruncating(spread), n) ? 1 : 0;
                if (finiteMax)
                {
                    double gaps = RowLoop<TVec, T>.Sum(new SoftTargetGaps<TVec, T>(z, max, targets), n);
                    if (typeof(T) == typeof(float) && !double.IsFinite(gaps))
                    {
                        gaps = WideGaps.SoftTargets(z, max, p, keep, spread, weight, n);
                    }
                    row.TargetGaps = gaps;
                }
            }
            stats[r] = row;
        }
    }

    /// <summary>Whether every ŷ_j = (keep·p_j + spread)·w_j of the shard's row is 0 (only checked when Σŷ = 0).</summary>
    private readonly bool AllTargetsZero(T* p, T keep, T spread, nuint n)
    {
        for (nuint j = 0; j < n; j++)
        {
            T y = (keep * p[j] + spread) * (shard.Weight == null ? T.One : shard.Weight[j]);
            if (y != T.Zero)
            {
                return false;
            }
        }
        return true;
    }
}
