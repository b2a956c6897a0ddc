using System.Runtime.InteropServices;

namespace NativeSoftmax;

/// <summary>
/// The softmax cross-entropy statistics of one row over some of its columns (a vocabulary shard,
/// or several merged): nsm_cross_entropy_stats of native/include/nativesoftmax.h, field for field
/// (seven float64 values, 56 bytes, no padding). A caller that splits the vocabulary computes them
/// per shard (SoftmaxPrimitives.CrossEntropyPartial),
/// exchanges them as plain bytes with any engine (MPI, torch.distributed, NCCL), merges them
/// (<see cref="Merge"/>) and finishes each shard's loss and gradient from the result
/// (docs/derivation.md §7).
/// </summary>
/// <remarks>With y_j the weighted, smoothed target of column j and m = <see cref="Max"/>: the row's
/// log Σ exp z = m + log1p(<see cref="SumBelowMax"/> + <see cref="CountAtMax"/> − 1), and its loss
/// Σ_j y_j·(lse − z_j) = <see cref="TargetGaps"/> + <see cref="TargetSum"/>·log Σ exp(z − m).</remarks>
[StructLayout(LayoutKind.Sequential)]
public struct CrossEntropyStats : IEquatable<CrossEntropyStats>
{
    /// <summary>m: the largest logit of the columns seen; −∞ for none (the identity).</summary>
    public double Max;

    /// <summary>How many of exp(z_j − m) are exactly 1 (the logits at the maximum) when
    /// Σ exp(z_j − m) &lt; 2; for a larger total a shard may give 1 here and the rest in
    /// <see cref="SumBelowMax"/> (the split adds accuracy only for a dominant class). Only the total
    /// <see cref="CountAtMax"/> + <see cref="SumBelowMax"/> is defined on its own.</summary>
    public double CountAtMax;

    /// <summary>Σ exp(z_j − m) over the other columns (see <see cref="CountAtMax"/>).</summary>
    public double SumBelowMax;

    /// <summary>Σ_j y_j over the columns seen.</summary>
    public double TargetSum;

    /// <summary>Σ_j y_j·(m − z_j) over the columns seen (≥ 0 for non-negative weights).</summary>
    public double TargetGaps;

    /// <summary>Hard labels: the label's class weight (1 without weights) when the label is among
    /// the columns seen, else 0; it is the row's share of the mean's divisor. Soft targets: 0.</summary>
    public double LabelWeight;

    /// <summary>Soft targets: 1 when some y_j of the columns seen is not 0, else 0 (a row whose
    /// targets are all 0 gives loss 0 and a zero gradient). Hard labels: 0.</summary>
    public double HasTarget;

    /// <summary>The statistics of no column: merging with it changes nothing, bit for bit.</summary>
    public static CrossEntropyStats Identity => new() { Max = double.NegativeInfinity };

    /// <summary>Whether these are exactly <see cref="Identity"/> (every field, bit for bit).</summary>
    public readonly bool IsIdentity => Equals(Identity);

    /// <summary>
    /// The statistics of the union of the columns of <paramref name="a"/> and <paramref name="b"/>
    /// (disjoint column sets of one row): the larger maximum M is kept, the other side's sums are
    /// rescaled by exp(m − M) (its exponentials) and its gaps by (M − m)·Σy, then added. Exact when
    /// either side is <see cref="Identity"/>; deterministic; associative and commutative up to
    /// rounding (the caller fixes the order for bitwise results). docs/derivation.md §7.
    /// </summary>
    public static CrossEntropyStats Merge(in CrossEntropyStats a, in CrossEntropyStats b)
    {
        if (b.IsIdentity)
        {
            return a;
        }
        if (a.IsIdentity)
        {
            return b;
        }
        // hi keeps its maximum (ties and NaN: a), lo is rescaled to it.
        bool aHigh = !(b.Max > a.Max);
        CrossEntropyStats hi = aHigh ? a : b, lo = aHigh ? b : a;
        CrossEntropyStats merged = hi;
        double shift = hi.Max;
        if (lo.CountAtMax != 0 || lo.SumBelowMax != 0)
        {
            if (lo.Max == shift)
            {
                merged.CountAtMax = hi.CountAtMax + lo.CountAtMax;
                merged.SumBelowMax = hi.SumBelowMax + lo.SumBelowMax;
            }
            else
            {
                double scale = Math.Exp(lo.Max - shift);
                if (scale == 1)
                {
                    // A maximum within rounding of the other: its exponentials are 1, as in one row.
                    merged.CountAtMax = hi.CountAtMax + lo.CountAtMax;
                    merged.SumBelowMax = hi.SumBelowMax + lo.SumBelowMax;
                }
                else
                {
                    merged.SumBelowMax = hi.SumBelowMax + (lo.SumBelowMax + lo.CountAtMax) * scale;
                }
            }
        }
        merged.TargetSum = hi.TargetSum + lo.TargetSum;
        // Σ y·(M − z) = Σ y·(m − z) + (M − m)·Σy: non-negative terms added, no cancellation.
        merged.TargetGaps = hi.TargetGaps + (lo.TargetSum == 0 ? lo.TargetGaps : lo.TargetGaps + (shift - lo.Max) * lo.TargetSum);
        merged.LabelWeight = hi.LabelWeight + lo.LabelWeight;
        merged.HasTarget = Math.Max(hi.HasTarget, lo.HasTarget);
        return merged;
    }

    /// <summary>Bitwise equality of every field (NaN equals the same NaN; −0 differs from +0).</summary>
    public readonly bool Equals(CrossEntropyStats other) =>
        MemoryMarshal.AsBytes(new ReadOnlySpan<CrossEntropyStats>(in this)).SequenceEqual(
            MemoryMarshal.AsBytes(new ReadOnlySpan<CrossEntropyStats>(in other)));

    /// <inheritdoc/>
    public override readonly bool Equals(object? obj) => obj is CrossEntropyStats other && Equals(other);

    /// <inheritdoc/>
    public override readonly int GetHashCode() =>
        HashCode.Combine(Max, CountAtMax, SumBelowMax, TargetSum, TargetGaps, LabelWeight, HasTarget);

    /// <inheritdoc/>
    public override readonly string ToString() =>
        $"max {Max}, at max {CountAtMax}, below max {SumBelowMax}, target sum {TargetSum}, gaps {TargetGaps}, label weight {LabelWeight}, has target {HasTarget}";
}
