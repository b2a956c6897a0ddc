using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using NativeSoftmax.Kernels;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Operations;

/// <summary>
/// Fused softmax cross-entropy with hard labels (class indices of type <typeparamref name="TLabel"/>:
/// int64 in the C ABI, int32 or int64 in the .NET API), PyTorch's normalisation; the gradient is
/// docs/derivation.md §4's o·Σy − y for the weighted, smoothed target y. Prepare reads the options, checks the
/// labels and computes Σw and the mean's divisor, which the run needs.
/// </summary>
internal unsafe struct HardLabelCrossEntropyOperation<T, TLabel, TOptions>(long rows, long cols, T* logits, long ldLogits,
    TLabel* target, T* weight, TOptions optionsSource, T* loss, T* grad, long ldGrad)
    : IRowOperation<HardLabelCrossEntropyOperation<T, TLabel, TOptions>, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TLabel : unmanaged, IBinaryInteger<TLabel>, ISignedNumber<TLabel>
    where TOptions : struct, ILossOptionsSource
{
    // What Prepare computes; only a prepared copy has them.
    private LossOptions _options;
    private double _weightSum;
    private double _divisor;

    // Set by Over: the logits are a block's scratch, just written and in the cache, so rows do not
    // prefetch the next one (NextRowPrefetch).
    private bool _logitsInScratch;

    public readonly long Rows => rows;

    public readonly long Cols => cols;

    public readonly bool Prepare(out Prepared<HardLabelCrossEntropyOperation<T, TLabel, TOptions>> prepared, [NotNullWhen(false)] out Failure? failure) =>
        PrepareStored(logits, ldLogits, grad, ldGrad, out prepared, out failure);

    /// <summary>
    /// <see cref="Prepare"/>, checking <paramref name="storedLogits"/> and <paramref name="storedGrad"/>
    /// (of <typeparamref name="TMatrix"/> elements) where this operation's logits and grad would
    /// be: the half-precision operation (<see cref="HalfHardLabelCrossEntropyOperation{TFormat, TLabel, TOptions}"/>)
    /// validates the caller's 16-bit matrices this way, then runs each block <see cref="Over"/>
    /// its float32 scratch.
    /// </summary>
    internal readonly bool PrepareStored<TMatrix>(TMatrix* storedLogits, long ldStoredLogits, TMatrix* storedGrad, long ldStoredGrad,
        out Prepared<HardLabelCrossEntropyOperation<T, TLabel, TOptions>> prepared, [NotNullWhen(false)] out Failure? failure)
        where TMatrix : unmanaged
    {
        prepared = default;
        HardLabelCrossEntropyOperation<T, TLabel, TOptions> ready = this;
        if (!optionsSource.TryRead(out ready._options, out failure)
            || !CrossEntropyValidation.Check(rows, cols, storedLogits, ldStoredLogits, new Region(target, rows, rows, "target", sizeof(TLabel)),
                weight, ready._options, loss, storedGrad, ldStoredGrad, gradMayBeTarget: false, out ready._weightSum, out failure))
        {
            return false;
        }
        if (!CheckLabels(ready._options.IgnoreIndex, out ready._divisor, out failure))
        {
            return false;
        }
        prepared = new(ready);
        return true;
    }

    /// <summary>
    /// This prepared operation (what its Prepare computed kept) with its logits and grad at
    /// other memory of the same layout rules: <paramref name="otherGrad"/> null for no gradient.
    /// Only for memory already validated (<see cref="PrepareStored"/>).
    /// </summary>
    internal readonly Prepared<HardLabelCrossEntropyOperation<T, TLabel, TOptions>> Over(T* otherLogits, long ldOtherLogits,
        T* otherGrad, long ldOtherGrad)
    {
        HardLabelCrossEntropyOperation<T, TLabel, TOptions> moved = this;
        moved.Bind(otherLogits, ldOtherLogits, otherGrad, ldOtherGrad);
        return new(moved);
    }

    private void Bind(T* otherLogits, long ldOtherLogits, T* otherGrad, long ldOtherGrad)
    {
        logits = otherLogits;
        ldLogits = ldOtherLogits;
        grad = otherGrad;
        ldGrad = ldOtherGrad;
        _logitsInScratch = true;
    }

    /// <summary>
    /// Every label is ignore_index or in [0, cols); gives the mean's divisor, Σ w_t over the rows that
    /// are not ignored (their count without weights). One pass in locals with no branch per row but
    /// the loop's; a bad label is looked for (for its message) only once one is known to be there.
    /// </summary>
    private readonly bool CheckLabels(long ignoreIndex, out double divisor, [NotNullWhen(false)] out Failure? failure)
    {
        TLabel* labels = target;
        T* weights = weight;
        long count = rows;
        ulong classes = (ulong)cols;
        bool bad = false;
        if (weights == null)
        {
            // Two counts, no branch: labels in [0, cols) and labels equal to ignore_index. When
            // ignore_index is outside [0, cols) every label is one or the other; when it is inside,
            // every label must be in range, and the ignored ones are among them.
            long inRange = 0, ignored = 0;
            for (long r = 0; r < count; r++)
            {
                long t = long.CreateTruncating(labels[r]);
                inRange += (ulong)t < classes ? 1 : 0;
                ignored += t == ignoreIndex ? 1 : 0;
            }
            bool ignoreInRange = (ulong)ignoreIndex < classes;
            bad = ignoreInRange ? inRange != count : inRange + ignored != count;
            divisor = ignoreInRange ? inRange - ignored : inRange; // as adding 1.0 per counted row (exact below 2^53 rows)
        }
        else
        {
            double weightTotal = 0;
            for (long r = 0; r < count && !bad; r++)
            {
                long t = long.CreateTruncating(labels[r]);
                if (t != ignoreIndex)
                {
                    bad = (ulong)t >= classes;
                    weightTotal += bad ? 0.0 : double.CreateTruncating(weights[t]);
                }
            }
            divisor = weightTotal;
        }
        if (bad)
        {
            failure = FirstBadLabel(ignoreIndex);
            return false;
        }
        failure = null;
        return true;
    }

    [MethodImpl(MethodImplOptions.NoInlining)] // the message is built only on failure
    private readonly Failure FirstBadLabel(long ignoreIndex)
    {
        long r = 0;
        long t = long.CreateTruncating(target[0]);
        while (t == ignoreIndex || (ulong)t < (ulong)cols)
        {
            t = long.CreateTruncating(target[++r]);
        }
        return new(Status.LabelOutOfRange, "target",
            $"target[{r}] = {t} is outside [0, {cols}) and is not ignore_index ({ignoreIndex}).");
    }

    public static double Run<TVec>(in Prepared<HardLabelCrossEntropyOperation<T, TLabel, TOptions>> prepared, long first, long end)
        where TVec : struct, IVec<TVec, T> =>
        ShortRow<TVec, T>.Fits((nuint)prepared.Operation.Cols)
            ? prepared.Operation.RunShortRows<TVec, ShortRow<TVec, T>>(first, end)
            : LaneTile<TVec, T>.Fits((nuint)prepared.Operation.Cols)
            ? prepared.Operation.RunShortRows<TVec, RowLoop<TVec, T>>(first, end)
            : ChunkedRowLoop<TVec, T>.Fits((nuint)prepared.Operation.Cols)
            ? prepared.Operation.RunRows<TVec, ChunkedRowLoop<TVec, T>>(first, end)
            : prepared.Operation.RunRows<TVec, RowLoop<TVec, T>>(first, end);

    public static void Finish(in Prepared<HardLabelCrossEntropyOperation<T, TLabel, TOptions>> prepared, double total) =>
        prepared.Operation.StoreReduced(total);

    /// <summary>The group scratch of <see cref="RunShortRows"/>, for blocks of at least one group.</summary>
    public static void ReserveScratch<TVec>(in Prepared<HardLabelCrossEntropyOperation<T, TLabel, TOptions>> prepared, long blockRows)
        where TVec : struct, IVec<TVec, T>
    {
        if (blockRows >= TVec.Count && LaneTile<TVec, T>.Fits((nuint)prepared.Operation.Cols))
        {
            ThreadScratch.Tiles<T>(LaneTile<TVec, T>.CrossEntropyScratchElements(Slot.Count));
        }
    }

    private readonly void StoreReduced(double total) =>
        CrossEntropyValidation.StoreReduced(loss, _options.Reduction, total, _divisor);

    /// <summary>
    /// Rows of at most <see cref="LaneTile{TVec, T}.MaxColumns"/>: Count at a time across lanes
    /// (<see cref="LaneTile{TVec, T}"/>), a group with an ignored row and the rest of the block one row
    /// at a time by <typeparamref name="TRestLoop"/>. Groups start at the block's first row, so they
    /// depend on the shape and labels alone, never on the thread count.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private readonly double RunShortRows<TVec, TRestLoop>(long first, long end)
        where TVec : struct, IVec<TVec, T>
        where TRestLoop : struct, IRowLoop<TVec, T>
    {
        int width = TVec.Count, size = LaneTile<TVec, T>.MaxElements;
        if (end - first < width)
        {
            return RunRows<TVec, TRestLoop>(first, end); // no group: no tile
        }
        // This thread's scratch, not the stack (ThreadScratch): two tiles, the per-lane values of T,
        // then the float64 ones, 8-byte aligned (size is even, and so is the count of T values before them).
        int laneValues = LaneTile<TVec, T>.LaneValuesLength(Slot.Count);
        T* tile = ThreadScratch.Tiles<T>(LaneTile<TVec, T>.CrossEntropyScratchElements(Slot.Count));
        T* weightTile = weight == null ? null : tile + size;
        T* lanes = tile + 2 * size;
        double* wide = (double*)(lanes + laneValues);
        if (weightTile != null)
        {
            LaneTile<TVec, T>.Broadcast(weight, (nuint)cols, weightTile);
        }
        double total = 0, scale = CrossEntropyValidation.GradientScale(_options, _divisor);
        long r = first;
        bool prefetch = rows * ldLogits * sizeof(T) >= LaneTile<TVec, T>.PrefetchFromBytes;
        for (; end - r >= width; r += width)
        {
            if (prefetch && end - r >= 3 * width)
            {
                LaneTile<TVec, T>.Prefetch(logits + (r + 2 * width) * ldLogits, ldLogits, (nuint)cols);
            }
            if (AnyIgnored(r, width))
            {
                total += RunRows<TVec, TRestLoop>(r, r + width);
            }
            else
            {
                total += Lanes<TVec>(r, tile, weightTile, lanes, wide, scale);
            }
        }
        return total + RunRows<TVec, TRestLoop>(r, end);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private readonly bool AnyIgnored(long r, int count)
    {
        bool any = false;
        for (int i = 0; i < count; i++)
        {
            any |= long.CreateTruncating(target[r + i]) == _options.IgnoreIndex;
        }
        return any;
    }

    /// <summary>
    /// The per-lane values of <see cref="Lanes"/> and <see cref="LaneRows"/>, Count each, by slot:
    /// the first <see cref="Inputs"/> are gathered in T, then widened to float64 all together; the
    /// float64 ones also hold log S and <see cref="LaneTerms"/>' results, whose last
    /// <see cref="Results"/> are narrowed back to T into the same slots of T.
    /// </summary>
    private static class Slot
    {
        // The first four as LaneExpSums.StoreStatistics writes them.
        public const int Max = 0, Others = 1, AtMax = 2, Gaps = 3, LabelLogit = 4, LabelExp = 5, LabelWeight = 6,
            Upstream = 7, Inputs = 8, Log = 8, Loss = 9, ExpScale = 10, Offset = 11, LabelGrad = 12, Results = 3, Count = 13;
    }

    /// <summary>
    /// Rows r … r + Count − 1 (none ignored) across lanes: <see cref="RunRows"/>'s steps and formulas, with
    /// each row's max, Σ exp, gradient scale and offset in its lane and the per-row scalars (loss,
    /// the gradient's terms) computed on float64 vectors of the lanes (<see cref="LaneTerms"/>).
    /// Returns the rows' loss total, added in row order.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private readonly double Lanes<TVec>(long r, T* tile, T* weightTile, T* lanes, double* wide, double scale)
        where TVec : struct, IVec<TVec, T>
    {
        nuint n = (nuint)cols;
        int width = TVec.Count;
        double epsilon = _options.LabelSmoothing;

        // Everything that reads the logits comes before the gradient is stored (it may be exactly
        // the logits): the tile, the smoothing term and z_t (LaneRows); the tile then holds exp(z − max).
        LaneTile<TVec, T>.FromRows(logits + r * ldLogits, ldLogits, n, tile);
        TVec max = LaneTile<TVec, T>.Max(tile, n);
        TVec gaps = epsilon > 0 ? LaneTile<TVec, T>.Sum(new WeightedGaps<TVec, T>(tile, max, weightTile), n) : TVec.Create(T.Zero);
        LaneExpSums<TVec, T> sums = LaneTile<TVec, T>.SumExps(new ExpShifted<TVec, T>(tile, max), grad == null ? null : tile, n);
        double total = LaneRows(r, max, sums, gaps, tile, lanes, wide, scale);
        if (grad != null)
        {
            T* gradScales = lanes + Slot.ExpScale * width, negativeOffsets = lanes + Slot.Offset * width, labelGrads = lanes + Slot.LabelGrad * width;
            LaneTile<TVec, T>.Store(new ScaledMinusWeights<TVec, T>(tile, TVec.Load(gradScales), TVec.Load(negativeOffsets), weightTile), tile, n);
            for (int i = 0; i < width; i++)
            {
                long t = long.CreateTruncating(target[r + i]);
                tile[(nuint)t * (nuint)width + (nuint)i] = labelGrads[i];
            }
            LaneTile<TVec, T>.ToRows(tile, n, grad + r * ldGrad, ldGrad);
        }
        return total;
    }

    /// <summary>
    /// The per-row scalars of <see cref="Lanes"/>'s rows from their lanes' statistics: each row's
    /// loss, stored for the reduction "none", and their total in row order; with a gradient, the
    /// lanes' gradient scales, negated offsets and label gradients (for the gradient factor
    /// <paramref name="scale"/>, <see cref="CrossEntropyValidation.GradientScale"/>), rounded to T,
    /// into their slots of <paramref name="lanes"/> (<see cref="Slot"/>). Computed on float64
    /// vectors of lanes (<see cref="LaneTerms"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // once per W rows; compiled apart, it leaves the kernel its inlining budget
    private readonly double LaneRows<TVec>(long r, TVec max, LaneExpSums<TVec, T> sums, TVec gaps, T* tile, T* lanes, double* wide, double scale)
        where TVec : struct, IVec<TVec, T>
    {
        nuint n = (nuint)cols;
        int width = TVec.Count;
        sums.StoreStatistics(max, gaps, lanes);
        T* upstreamSource = (T*)_options.GradOutput;
        for (int i = 0; i < width; i++)
        {
            long row = r + i;
            long t = long.CreateTruncating(target[row]);
            lanes[Slot.LabelLogit * width + i] = logits[row * ldLogits + t];
            lanes[Slot.LabelExp * width + i] = grad == null ? T.Zero : tile[(nuint)t * (nuint)width + (nuint)i];
            lanes[Slot.LabelWeight * width + i] = weight == null ? T.One : weight[t];
            lanes[Slot.Upstream * width + i] = upstreamSource == null ? T.One : upstreamSource[row];
        }
        LaneWidening<TVec, T>.Widen(lanes, wide, Slot.Inputs * width);
        sums.Logs(wide + Slot.Log * width);
        if (typeof(T) == typeof(float) && _options.LabelSmoothing > 0)
        {
            for (int i = 0; i < width; i++)
            {
                double* gapSum = wide + Slot.Gaps * width + i;
                if (!double.IsFinite(*gapSum))
                {
                    *gapSum = WideGaps.Weighted(logits + (r + i) * ldLogits, lanes[Slot.Max * width + i], weight, n);
                }
            }
        }

        LaneWidening<TVec, T>.Apply(new LaneTerms(_options.LabelSmoothing, cols, _weightSum, scale, grad != null,
            _options.GradOutput != null), wide);

        if (grad != null)
        {
            int first = (Slot.Count - Slot.Results) * width;
            LaneWidening<TVec, T>.Narrow(wide + first, lanes + first, Slot.Results * width);
            for (int i = 0; i < width; i++)
            {
                lanes[Slot.Offset * width + i] = -lanes[Slot.Offset * width + i];
                lanes[Slot.LabelGrad * width + i] = VecMath.FlushSubnormal(lanes[Slot.LabelGrad * width + i]);
            }
        }
        // The group's own total, from 0: the caller adds it to the block's (as before lanes were vectors).
        return CrossEntropyValidation.SumRowLosses(0.0, wide + Slot.Loss * width, width,
            _options.Reduction == Reduction.None ? loss : null, r);
    }

    /// <summary>
    /// A row's loss and gradient terms from its statistics, in float64, from the slots
    /// <see cref="Slot"/> lays out: on vectors of lanes for rows across lanes, on one lane
    /// (<see cref="VecScalar{T}"/>) for the rows one by one (<see cref="RunRows"/>), one formula for
    /// both (no fused multiply-adds, so each lane gives the finite results of the one-lane form bit
    /// for bit; where two NaNs meet, the sign of the NaN may differ).
    /// </summary>
    /// <remarks>
    /// <para>Loss: (1 − ε)·w_t·(lse − z_t) + (ε/C)·Σ_j w_j·(lse − z_j), with lse − z_t =
    /// (max − z_t) + log S, the gap in float64 (float32 max − z_t can overflow), and
    /// Σ_j w_j·(lse − z_j) = gaps + Σw·log S (<see cref="WeightedGaps{TVec, T}"/>).</para>
    /// <para>Gradient (only <paramref name="withGradient"/>): s·(o_j·Σy − y_j), Σy = (1 − ε)·w_t +
    /// (ε/C)·Σw (Σw only with smoothing, <see cref="TargetSum"/>) and y_j = (ε/C)·w_j (+ (1 − ε)·w_t at
    /// t), s the row's scale (times its upstream gradient, read only <paramref name="withUpstream"/>),
    /// from the stored e_j = exp(z_j − max) and o_j = e_j / S: every j but t is e_j·ExpScale −
    /// Offset·w_j (<see cref="ScaledMinusWeights{TVec, T}"/>), and t is LabelGrad =
    /// s·(e_t·(Σy − y_t) − y_t·(S − e_t))/S: at the maximum (e_t = 1) that is the −y_t·(S − 1)/S of a
    /// dominant class, which 1/S − 1 would round to 0. One division per row, 1/S (S is in [1, C], so
    /// 1/S is never subnormal; s/S could be, and lose bits before its product).</para>
    /// </remarks>
    private readonly struct LaneTerms(double epsilon, long cols, double weightSum, double scale, bool withGradient, bool withUpstream)
        : ILaneFormulas
    {
        /// <summary>One row's terms, from slots of one value each.</summary>
        [MethodImpl(MethodImplOptions.NoInlining)] // compiled apart: inside RunRows' large body, the inliner's budget ran out and left calls
        public void OneLane(double* slots) => Apply<VecScalar<double>>(slots, 0, 1);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Apply<TD>(double* wide, int i, int width)
            where TD : struct, IVec<TD, double>
        {
            TD keep = TD.Create(1.0 - epsilon), spread = TD.Create(epsilon / cols), sums = TD.Create(weightSum);
            double* at = wide + i;
            TD wt = TD.Load(at + Slot.LabelWeight * width), logSum = TD.Load(at + Slot.Log * width);
            TD rowLoss = keep * wt * ((TD.Load(at + Slot.Max * width) - TD.Load(at + Slot.LabelLogit * width)) + logSum);
            if (epsilon > 0)
            {
                rowLoss += spread * (TD.Load(at + Slot.Gaps * width) + sums * logSum);
            }
            TD.Store(rowLoss, at + Slot.Loss * width);
            if (!withGradient)
            {
                return;
            }
            TD one = TD.Create(1.0);
            TD others = TD.Load(at + Slot.Others * width), atMax = TD.Load(at + Slot.AtMax * width);
            TD et = TD.Load(at + Slot.LabelExp * width);
            TD rowScale = withUpstream ? TD.Create(scale) * TD.Load(at + Slot.Upstream * width) : TD.Create(scale);
            TD targetSum = epsilon > 0 ? keep * wt + spread * sums : wt;
            TD yt = TD.Create((1.0 - epsilon) + epsilon / cols) * wt;
            TD inverseTotal = one / (others + atMax);
            TD othersTargetSum = epsilon > 0 ? spread * (sums - wt) : TD.Create(0.0);
            TD excluding = TD.Select(TD.EqualTo(et, one), others + (atMax - one), (others - et) + atMax);
            TD.Store(rowScale * targetSum * inverseTotal, at + Slot.ExpScale * width);
            TD.Store(rowScale * spread, at + Slot.Offset * width);
            TD.Store(rowScale * (et * othersTargetSum - yt * excluding) * inverseTotal, at + Slot.LabelGrad * width);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)] // one compilation unit per width and loop type
    private readonly double RunRows<TVec, TLoop>(long first, long end)
        where TVec : struct, IVec<TVec, T>
        where TLoop : struct, IRowLoop<TVec, T>
    {
        nuint n = (nuint)cols;
        double epsilon = _options.LabelSmoothing;
        double scale = CrossEntropyValidation.GradientScale(_options, _divisor);
        bool storeRowLosses = loss != null && _options.Reduction == Reduction.None;
        nuint ahead = _logitsInScratch ? 0 : NextRowPrefetch.Distance<TVec, T, TLoop>(rows, cols, ldLogits);
        // Long rows go by LongRow's chunk pass, which reads them once for the maximum, the sum and
        // the smoothing term; the gradient is then the stored exponentials scaled chunk by chunk.
        bool byChunks = typeof(TLoop) == typeof(ChunkedRowLoop<TVec, T>) && LongRow<TVec, T>.KeepsExps(n);
        double* chunkMaxima = stackalloc double[byChunks ? (int)LongRow<TVec, T>.MaxChunksKeepingExps : 0];
        double* slots = stackalloc double[Slot.Count]; // one lane of LaneTerms
        var terms = new LaneTerms(epsilon, cols, _weightSum, scale, grad != null, _options.GradOutput != null);
        double total = 0;
        for (long r = first; r < end; r++)
        {
            T* z = logits + r * ldLogits;
            T* g = grad == null ? null : grad + r * ldGrad;
            long t = long.CreateTruncating(target[r]);
            if (t == _options.IgnoreIndex)
            {
                if (storeRowLosses)
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
            ExpSum sum;
            double gaps = 0.0;
            double rowScale = CrossEntropyValidation.RowScale<T>(_options, scale, r);
            double wt = weight == null ? 1.0 : double.CreateTruncating(weight[t]);
            // A row whose gradient factor s·Σy/S may not be finite in T (an upstream gradient of
            // ±∞ or NaN, or a finite one large enough; |s·Σy/S| ≤ |s·Σy| as S ≥ 1) takes the one-pass
            // formula, whose exp(z − max)·factor gives the same non-finite values as on short rows;
            // the chunks' exp(m_chunk − max)·factor would turn an exponential that underflows there
            // into ±∞ or a finite value.
            bool rowByChunks = byChunks && (g == null || T.IsFinite(T.CreateTruncating(rowScale * TargetSum(wt))));
            if (rowByChunks)
            {
                sum = epsilon > 0
                    ? LongRow<TVec, T>.Statistics(z, g, n, chunkMaxima, weight, out max, out gaps)
                    : LongRow<TVec, T>.Statistics(z, g, n, chunkMaxima, out max);
            }
            else
            {
                max = TLoop.Max(z, n);
                gaps = epsilon > 0 ? SmoothingGaps<TVec, TLoop>(z, max, n) : 0.0;
                sum = ExpShiftedAhead<TVec, T>.SumExps<TLoop>(z, max, g, n, r + 1 < end ? ahead : 0);
            }
            slots[Slot.Max] = double.CreateTruncating(max);
            slots[Slot.Others] = sum.Others;
            slots[Slot.AtMax] = sum.AtMax;
            slots[Slot.Gaps] = gaps;
            slots[Slot.LabelLogit] = double.CreateTruncating(zt);
            slots[Slot.LabelExp] = g == null ? 0.0
                : rowByChunks ? LongRow<TVec, T>.ExpAt(g, n, chunkMaxima, max, (nuint)t) : double.CreateTruncating(g[t]);
            slots[Slot.LabelWeight] = wt;
            slots[Slot.Upstream] = _options.GradOutput == null ? 1.0 : double.CreateTruncating(((T*)_options.GradOutput)[r]);
            slots[Slot.Log] = sum.Log;
            terms.OneLane(slots);
            double rowLoss = slots[Slot.Loss];
            total += rowLoss;
            if (storeRowLosses)
            {
                loss[r] = VecMath.FlushSubnormal(T.CreateTruncating(rowLoss));
            }

            if (g != null)
            {
                // Every j but t in one pass; then t.
                double expScale = slots[Slot.ExpScale], offset = slots[Slot.Offset];
                if (rowByChunks)
                {
                    LongRow<TVec, T>.ScaleChunks(g, n, chunkMaxima, max, expScale, offset, weight);
                }
                else if (weight == null && offset == 0 && expScale >= 0)
                {
                    // The same values as ScaledMinusWeights (e·scale − 0·1 = e·scale, +0 included) by
                    // softmax's cheaper store: no weights to load, e·scale ≥ 0 to flush.
                    TLoop.Store(new ScaledExps<TVec, T>(g, T.CreateTruncating(expScale)), g, n);
                }
                else
                {
                    TLoop.Store(new ScaledMinusWeights<TVec, T>(g, T.CreateTruncating(expScale), T.CreateTruncating(offset), weight), g, n);
                }
                g[t] = VecMath.FlushSubnormal(T.CreateTruncating(slots[Slot.LabelGrad]));
            }
        }
        return total;
    }

    /// <summary>Σy = (1 − ε)·w_t + (ε/C)·Σw of a row whose label weighs <paramref name="wt"/>. Σw
    /// only enters with label smoothing: finite weights may still sum to ±∞, which must not turn
    /// an unsmoothed gradient into 0·∞ = NaN.</summary>
    private readonly double TargetSum(double wt)
    {
        double epsilon = _options.LabelSmoothing;
        return epsilon > 0 ? (1.0 - epsilon) * wt + epsilon / cols * _weightSum : wt;
    }

    /// <summary>Σ_j w_j·(max − z_j); in float64 when the float32 sum overflows (logits near ±FLT_MAX).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private readonly double SmoothingGaps<TVec, TLoop>(T* z, T max, nuint n)
        where TVec : struct, IVec<TVec, T>
        where TLoop : struct, IRowLoop<TVec, T>
    {
        double gaps = TLoop.Sum(new WeightedGaps<TVec, T>(z, max, weight), n);
        return typeof(T) == typeof(float) && !double.IsFinite(gaps) ? WideGaps.Weighted(z, max, weight, n) : gaps;
    }
}
