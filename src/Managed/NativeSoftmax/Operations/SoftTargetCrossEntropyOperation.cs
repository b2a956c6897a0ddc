using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using NativeSoftmax.Kernels;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Operations;

/// <summary>
/// Fused softmax cross-entropy with soft (probability) targets: loss Σ ŷ·(lse − z), gradient the
/// general form of docs/derivation.md §4 s·(o·Σŷ − ŷ), exact when the targets do not sum to 1. Prepare reads the
/// options.
/// </summary>
internal unsafe struct SoftTargetCrossEntropyOperation<T, TOptions>(long rows, long cols, T* logits, long ldLogits,
    T* target, long ldTarget, T* weight, TOptions optionsSource, T* loss, T* grad, long ldGrad)
    : IRowOperation<SoftTargetCrossEntropyOperation<T, TOptions>, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TOptions : struct, ILossOptionsSource
{
    // What Prepare computes; only a prepared copy has it.
    private LossOptions _options;

    // Set by Over: the logits are a block's scratch, just written and in the cache, so rows do not
    // prefetch the next one (NextRowPrefetch).
    private bool _logitsInScratch;

    public readonly long Rows => rows;

    public readonly long Cols => cols;

    public readonly bool Prepare(out Prepared<SoftTargetCrossEntropyOperation<T, TOptions>> prepared, [NotNullWhen(false)] out Failure? failure) =>
        PrepareStored(logits, ldLogits, target, ldTarget, grad, ldGrad, out prepared, out failure);

    /// <summary>
    /// <see cref="Prepare"/>, checking <paramref name="storedLogits"/>, <paramref name="storedTarget"/>
    /// and <paramref name="storedGrad"/> (of <typeparamref name="TMatrix"/> elements) where this
    /// operation's matrices would be: the half-precision operation
    /// (<see cref="HalfSoftTargetCrossEntropyOperation{TFormat, TOptions}"/>) validates the
    /// caller's 16-bit matrices this way, then runs each block <see cref="Over"/> its float32 scratch.
    /// </summary>
    internal readonly bool PrepareStored<TMatrix>(TMatrix* storedLogits, long ldStoredLogits, TMatrix* storedTarget, long ldStoredTarget,
        TMatrix* storedGrad, long ldStoredGrad,
        out Prepared<SoftTargetCrossEntropyOperation<T, TOptions>> prepared, [NotNullWhen(false)] out Failure? failure)
        where TMatrix : unmanaged
    {
        prepared = default;
        SoftTargetCrossEntropyOperation<T, TOptions> ready = this;
        if (!optionsSource.TryRead(out ready._options, out failure)
            || !Checks.Shape(rows, cols, out failure)
            || !Checks.Required(storedTarget, rows, "target", out failure)
            || !Checks.Matrix(rows, cols, ldStoredTarget, "ld_target", sizeof(TMatrix), out failure)
            || !CrossEntropyValidation.Check(rows, cols, storedLogits, ldStoredLogits,
                Region.Matrix(storedTarget, rows, cols, ldStoredTarget, "target", sizeof(TMatrix)),
                weight, ready._options, loss, storedGrad, ldStoredGrad, gradMayBeTarget: true, out _, out failure))
        {
            return false;
        }
        prepared = new(ready);
        return true;
    }

    /// <summary>
    /// This prepared operation (its options kept) with its logits, target and grad at other
    /// memory: <paramref name="otherGrad"/> null for no gradient. Only for memory already
    /// validated (<see cref="PrepareStored"/>).
    /// </summary>
    internal readonly Prepared<SoftTargetCrossEntropyOperation<T, TOptions>> Over(T* otherLogits, long ldOtherLogits,
        T* otherTarget, long ldOtherTarget, T* otherGrad, long ldOtherGrad)
    {
        SoftTargetCrossEntropyOperation<T, TOptions> moved = this;
        moved.Bind(otherLogits, ldOtherLogits, otherTarget, ldOtherTarget, otherGrad, ldOtherGrad);
        return new(moved);
    }

    private void Bind(T* otherLogits, long ldOtherLogits, T* otherTarget, long ldOtherTarget, T* otherGrad, long ldOtherGrad)
    {
        logits = otherLogits;
        ldLogits = ldOtherLogits;
        target = otherTarget;
        ldTarget = ldOtherTarget;
        grad = otherGrad;
        ldGrad = ldOtherGrad;
        _logitsInScratch = true;
    }

    public static double Run<TVec>(in Prepared<SoftTargetCrossEntropyOperation<T, TOptions>> prepared, long first, long end)
        where TVec : struct, IVec<TVec, T> =>
        LaneTile<TVec, T>.Fits((nuint)prepared.Operation.Cols)
            ? prepared.Operation.RunShortRows<TVec>(first, end)
            : ChunkedRowLoop<TVec, T>.Fits((nuint)prepared.Operation.Cols)
            ? prepared.Operation.RunRows<TVec, ChunkedRowLoop<TVec, T>>(first, end)
            : prepared.Operation.RunRows<TVec, RowLoop<TVec, T>>(first, end);

    public static void Finish(in Prepared<SoftTargetCrossEntropyOperation<T, TOptions>> prepared, double total) =>
        prepared.Operation.StoreReduced(total);

    /// <summary>The group scratch of <see cref="RunShortRows"/>, for blocks of at least one group.</summary>
    public static void ReserveScratch<TVec>(in Prepared<SoftTargetCrossEntropyOperation<T, TOptions>> prepared, long blockRows)
        where TVec : struct, IVec<TVec, T>
    {
        if (blockRows >= TVec.Count && LaneTile<TVec, T>.Fits((nuint)prepared.Operation.Cols))
        {
            ThreadScratch.Tiles<T>(LaneTile<TVec, T>.CrossEntropyScratchElements(Slot.Count));
        }
    }

    private readonly void StoreReduced(double total) =>
        CrossEntropyValidation.StoreReduced(loss, _options.Reduction, total, rows);

    /// <summary>
    /// Rows of at most <see cref="LaneTile{TVec, T}.MaxColumns"/>: Count at a time across lanes
    /// (<see cref="Lanes"/>), a group with a row whose targets sum to 0 and the rest of the block one
    /// row at a time (<see cref="RunRows"/>). Groups start at the block's first row, so they depend on
    /// the shape and targets alone, never on the thread count.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private readonly double RunShortRows<TVec>(long first, long end)
        where TVec : struct, IVec<TVec, T>
    {
        int width = TVec.Count, size = LaneTile<TVec, T>.MaxElements;
        if (end - first < width)
        {
            return RunRows<TVec, RowLoop<TVec, T>>(first, end); // no group: no tile
        }
        // This thread's scratch, not the stack (ThreadScratch): two tiles, the per-lane values of T,
        // then the float64 ones, 8-byte aligned (size is even, and so is the count of T values before them).
        int laneValues = LaneTile<TVec, T>.LaneValuesLength(Slot.Count);
        T* tiles = ThreadScratch.Tiles<T>(LaneTile<TVec, T>.CrossEntropyScratchElements(Slot.Count));
        T* targetTile = tiles + size;
        T* lanes = tiles + 2 * size;
        double* wide = (double*)(lanes + laneValues);
        double scale = CrossEntropyValidation.GradientScale(_options, rows);
        double total = 0;
        long r = first;
        bool prefetch = !_logitsInScratch && rows * ldLogits * sizeof(T) >= LaneTile<TVec, T>.PrefetchFromBytes;
        for (; end - r >= width; r += width)
        {
            if (prefetch && end - r >= 3 * width)
            {
                LaneTile<TVec, T>.Prefetch(logits + (r + 2 * width) * ldLogits, ldLogits, (nuint)cols);
                LaneTile<TVec, T>.Prefetch(target + (r + 2 * width) * ldTarget, ldTarget, (nuint)cols);
            }
            if (!Lanes<TVec>(r, tiles, targetTile, lanes, wide, scale, ref total))
            {
                total += RunRows<TVec, RowLoop<TVec, T>>(r, r + width);
            }
        }
        return total + RunRows<TVec, RowLoop<TVec, T>>(r, end);
    }

    /// <summary>
    /// The per-lane values of <see cref="Lanes"/> and <see cref="LaneRows"/>, Count each, by slot:
    /// the first <see cref="Inputs"/> are stored or gathered in T, then widened to float64 all
    /// together; the float64 ones also hold log S and <see cref="LaneTerms"/>' results, whose last
    /// <see cref="Results"/> are narrowed back to T into the same slots of T.
    /// </summary>
    private static class Slot
    {
        // The first four as LaneExpSums.StoreStatistics writes them.
        public const int Max = 0, Others = 1, AtMax = 2, Gaps = 3, TargetSum = 4, Upstream = 5, Inputs = 6, Log = 6,
            Loss = 7, GradScale = 8, Scale = 9, AtMaxScale = 10, AtMaxRestScale = 11, Results = 4, Count = 12;
    }

    /// <summary>
    /// Rows r … r + Count − 1 across lanes: <see cref="RunRows"/>'s steps and formulas, with each
    /// row's target sum, maximum, smoothing gaps, Σ exp and gradient factors in its lane, and its loss
    /// and factors computed on float64 vectors of the lanes (<see cref="LaneRows"/>); the loss total
    /// is added to <paramref name="total"/>. Returns false, having written nothing, when a row's
    /// targets sum to 0 (rare: such a row may ask for nothing, which <see cref="RunRows"/> tells
    /// apart), so that the group runs row by row instead.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private readonly bool Lanes<TVec>(long r, T* tile, T* targetTile, T* lanes, double* wide, double scale, ref double total)
        where TVec : struct, IVec<TVec, T>
    {
        nuint n = (nuint)cols;
        int width = TVec.Count;
        double epsilon = _options.LabelSmoothing;
        LaneTile<TVec, T>.FromRows(target + r * ldTarget, ldTarget, n, targetTile);
        Smooth<TVec>(targetTile, n, T.CreateTruncating(1.0 - epsilon), T.CreateTruncating(epsilon / cols));
        // The tile holds ŷ: SmoothedTargets with keep 1, spread 0 and no weights reads it back.
        var targets = new SmoothedTargets<TVec, T>(targetTile, T.One, T.Zero, null);
        TVec targetSums = LaneTile<TVec, T>.Sum(targets, n);
        if (TVec.CountTrue(TVec.EqualTo(targetSums, TVec.Create(T.Zero))) != 0)
        {
            return false;
        }

        // Everything is read into the tiles before the gradient is stored (it may be exactly the
        // logits or the target); the logits' tile then holds exp(z − max).
        LaneTile<TVec, T>.FromRows(logits + r * ldLogits, ldLogits, n, tile);
        TVec max = LaneTile<TVec, T>.Max(tile, n);
        TVec gaps = LaneTile<TVec, T>.Sum(new SoftTargetGaps<TVec, T>(tile, max, targets), n);
        LaneExpSums<TVec, T> sums = LaneTile<TVec, T>.SumExps(new ExpShifted<TVec, T>(tile, max), grad == null ? null : tile, n);
        TVec.Store(targetSums, lanes + Slot.TargetSum * width);
        total = LaneRows(r, max, sums, gaps, lanes, wide, scale, total);
        if (grad != null)
        {
            var gradient = new SoftTargetGradient<TVec, T, Elements<TVec, T>>(new Elements<TVec, T>(tile), targets,
                TVec.Load(lanes + Slot.GradScale * width), targetSums, TVec.Load(lanes + Slot.Scale * width),
                TVec.Load(lanes + Slot.AtMaxScale * width), TVec.Load(lanes + Slot.AtMaxRestScale * width));
            LaneTile<TVec, T>.Store(gradient, tile, n);
            LaneTile<TVec, T>.ToRows(tile, n, grad + r * ldGrad, ldGrad);
        }
        return true;
    }

    /// <summary>
    /// The per-row scalars of <see cref="Lanes"/>'s rows from their lanes' statistics (the target
    /// sums already in their slot): each row's loss, stored for the reduction "none" and added in
    /// row order to <paramref name="total"/>, which it returns; with a gradient, the factors of <see cref="SoftTargetGradientTerms{T}"/>
    /// (for the gradient factor <paramref name="scale"/>, <see cref="CrossEntropyValidation.GradientScale"/>),
    /// rounded to T, into their slots of <paramref name="lanes"/> (<see cref="Slot"/>). Computed on
    /// float64 vectors of lanes (<see cref="LaneTerms"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // once per W rows; compiled apart, it leaves the kernel its inlining budget
    private readonly double LaneRows<TVec>(long r, TVec max, LaneExpSums<TVec, T> sums, TVec gaps, T* lanes, double* wide, double scale,
        double total)
        where TVec : struct, IVec<TVec, T>
    {
        nuint n = (nuint)cols;
        int width = TVec.Count;
        double epsilon = _options.LabelSmoothing;
        sums.StoreStatistics(max, gaps, lanes);
        T* upstreamSource = (T*)_options.GradOutput;
        for (int i = 0; i < width; i++)
        {
            lanes[Slot.Upstream * width + i] = upstreamSource == null ? T.One : upstreamSource[r + i];
        }
        LaneWidening<TVec, T>.Widen(lanes, wide, Slot.Inputs * width);
        sums.Logs(wide + Slot.Log * width);
        if (typeof(T) == typeof(float))
        {
            for (int i = 0; i < width; i++)
            {
                double* gapSum = wide + Slot.Gaps * width + i;
                if (!double.IsFinite(*gapSum))
                {
                    // max − z_j overflowed float32 (logits near ±FLT_MAX): form the gaps in float64.
                    long row = r + i;
                    *gapSum = WideGaps.SoftTargets(logits + row * ldLogits, lanes[Slot.Max * width + i], target + row * ldTarget,
                        1.0 - epsilon, epsilon / cols, weight, n);
                }
            }
        }

        LaneWidening<TVec, T>.Apply(new LaneTerms(scale, grad != null, upstreamSource != null), wide);

        if (grad != null)
        {
            int first = (Slot.Count - Slot.Results) * width;
            LaneWidening<TVec, T>.Narrow(wide + first, lanes + first, Slot.Results * width);
            for (int i = 0; i < width; i++)
            {
                lanes[Slot.GradScale * width + i] = -lanes[Slot.GradScale * width + i];
                lanes[Slot.AtMaxRestScale * width + i] = -lanes[Slot.AtMaxRestScale * width + i];
            }
        }
        // Each row's loss joins the block's running total, one by one (as before lanes were vectors).
        return CrossEntropyValidation.SumRowLosses(total, wide + Slot.Loss * width, width,
            _options.Reduction == Reduction.None ? loss : null, r);
    }

    /// <summary>
    /// The row loss Σ_j ŷ_j·(max − z_j) + Σŷ·log S, and <see cref="SoftTargetGradientTerms{T}"/>'s
    /// factors before rounding (<see cref="SoftTargetGradientTerms{T}.Factors"/>; the two negated
    /// ones positive: they are negated in T, which gives the same bits), on float64 vectors of lanes
    /// from the slots <see cref="Slot"/> lays out: the same float64 operations in the same order as
    /// one row's, so the same finite results bit for bit lane by lane (where two NaNs meet, the
    /// sign of the NaN may differ).
    /// </summary>
    private readonly struct LaneTerms(double scale, bool withGradient, bool withUpstream) : ILaneFormulas
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Apply<TD>(double* wide, int i, int width)
            where TD : struct, IVec<TD, double>
        {
            double* at = wide + i;
            TD targetSum = TD.Load(at + Slot.TargetSum * width);
            TD.Store(TD.Load(at + Slot.Gaps * width) + targetSum * TD.Load(at + Slot.Log * width), at + Slot.Loss * width);
            if (!withGradient)
            {
                return;
            }
            TD gradScale = withUpstream ? TD.Create(scale) * TD.Load(at + Slot.Upstream * width) : TD.Create(scale);
            SoftTargetGradientTerms<T>.Factors(gradScale, targetSum, TD.Load(at + Slot.Others * width), TD.Load(at + Slot.AtMax * width),
                out TD factor, out TD atMaxFactor, out TD atMaxRestFactor);
            TD.Store(gradScale, at + Slot.GradScale * width);
            TD.Store(factor, at + Slot.Scale * width);
            TD.Store(atMaxFactor, at + Slot.AtMaxScale * width);
            TD.Store(atMaxRestFactor, at + Slot.AtMaxRestScale * width);
        }
    }

    /// <summary>ŷ = (keep·p + spread)·w_j over a targets' tile, in place, column by column: the
    /// operations of <see cref="SmoothedTargets{TVec, T}"/> with the class weight of column j
    /// broadcast (no tile of weights), once for the three passes that read ŷ.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private readonly void Smooth<TVec>(T* tile, nuint n, T keep, T spread)
        where TVec : struct, IVec<TVec, T>
    {
        nuint width = (nuint)TVec.Count;
        TVec keeps = TVec.Create(keep), spreads = TVec.Create(spread);
        for (nuint j = 0; j < n; j++)
        {
            TVec y = TVec.MultiplyAdd(TVec.Load(tile + j * width), keeps, spreads);
            TVec.Store(weight == null ? y : y * TVec.Create(weight[j]), tile + j * width);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)] // one compilation unit per width and loop type
    private readonly double RunRows<TVec, TLoop>(long first, long end)
        where TVec : struct, IVec<TVec, T>
        where TLoop : struct, IRowLoop<TVec, T>
    {
        nuint n = (nuint)cols;
        double epsilon = _options.LabelSmoothing;
        T keep = T.CreateTruncating(1.0 - epsilon), spread = T.CreateTruncating(epsilon / cols);
        double scale = CrossEntropyValidation.GradientScale(_options, rows);
        bool storeRowLosses = loss != null && _options.Reduction == Reduction.None;
        nuint ahead = _logitsInScratch ? 0 : NextRowPrefetch.Distance<TVec, T, TLoop>(rows, cols, ldLogits);
        double total = 0;
        for (long r = first; r < end; r++)
        {
            T* z = logits + r * ldLogits;
            T* p = target + r * ldTarget;
            var targets = new SmoothedTargets<TVec, T>(p, keep, spread, weight);
            double targetSum = TLoop.Sum(targets, n);
            if (targetSum == 0 && AllTargetsZero(p, keep, spread))
            {
                // A row that asks for nothing contributes nothing, whatever its logits (even all −∞).
                if (storeRowLosses)
                {
                    loss[r] = T.Zero;
                }
                if (grad != null)
                {
                    NativeMemory.Clear(grad + r * ldGrad, (nuint)cols * (nuint)sizeof(T));
                }
                continue;
            }
            T* g = grad == null ? null : grad + r * ldGrad;
            // The gradient pass reads the exponentials back from the gradient row where the sum's
            // pass stored them (one exponential per element), unless the gradient is exactly over
            // the target, which that pass would overwrite before the gradient reads it. Everything
            // else that reads the logits comes first: the gradient may be exactly over them.
            bool keepExps = g != null && g != p;
            T max = TLoop.Max(z, n);
            double gaps = TLoop.Sum(new SoftTargetGaps<TVec, T>(z, max, targets), n);
            if (typeof(T) == typeof(float) && !double.IsFinite(gaps))
            {
                // max − z_j overflowed float32 (logits near ±FLT_MAX): form the gaps in float64.
                gaps = WideGaps.SoftTargets(z, max, p, 1.0 - epsilon, epsilon / cols, weight, n);
            }
            ExpSum sum = ExpShiftedAhead<TVec, T>.SumExps<TLoop>(z, max, keepExps ? g : null, n, r + 1 < end ? ahead : 0);
            // Σ ŷ·(lse − z) = Σ ŷ·(max − z) + Σŷ·log Σexp; an all-zero target row contributes 0.
            double rowLoss = targetSum == 0 ? gaps : gaps + targetSum * sum.Log;
            total += rowLoss;
            if (storeRowLosses)
            {
                loss[r] = VecMath.FlushSubnormal(T.CreateTruncating(rowLoss));
            }
            if (g != null)
            {
                var terms = new SoftTargetGradientTerms<T>(CrossEntropyValidation.RowScale<T>(_options, scale, r), targetSum, sum);
                if (keepExps)
                {
                    TLoop.Store(new SoftTargetGradient<TVec, T, Elements<TVec, T>>(new Elements<TVec, T>(g), targets, terms), g, n);
                }
                else
                {
                    TLoop.Store(new SoftTargetGradient<TVec, T, ExpShifted<TVec, T>>(new ExpShifted<TVec, T>(z, max), targets, terms), g, n);
                }
            }
        }
        return total;
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
