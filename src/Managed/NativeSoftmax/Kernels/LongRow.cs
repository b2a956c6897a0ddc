using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using NativeSoftmax.Operations;
using NativeSoftmax.Simd;
using NativeSoftmax.Threading;

namespace NativeSoftmax.Kernels;

/// <summary>
/// Softmax and log_softmax of rows of at least <see cref="MinLength"/> elements, by chunks of
/// columns: each chunk's maximum and <see cref="ExpSum"/> relative to it (read while the chunk is
/// in the first-level cache; softmax keeps the exponentials in the output), the chunks folded in
/// column order into the row's, then one pass that writes the output (softmax: each chunk's
/// exponentials scaled by exp(m_chunk − max)/Σ). A long row is read from memory about twice and
/// written twice (once when the chunks stay in cache), and its chunks can run on several threads: where a chunk's statistics are computed does not change
/// them, and the fold always takes them in the same order, so the result is the same bits for
/// every thread count.
/// </summary>
internal static unsafe class LongRow<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    /// <summary>Elements per chunk (16 KiB of float32); the last chunk also takes the remainder.</summary>
    public const nuint ChunkLength = 4096;

    /// <summary>The shortest row that goes by chunks.</summary>
    public const nuint MinLength = 2 * ChunkLength;

    /// <summary>Whether a row of <paramref name="n"/> elements goes by chunks.</summary>
    public static bool Fits(nuint n) => n >= MinLength;

    /// <summary>softmax of one long row; <paramref name="probabilities"/> may be exactly <paramref name="logits"/>.</summary>
    public static void Softmax(T* logits, T* probabilities, nuint n) => Row<SoftmaxOutput>(logits, probabilities, n, default);

    /// <summary>log_softmax of one long row; <paramref name="logProbabilities"/> may be exactly <paramref name="logits"/>.</summary>
    public static void LogSoftmax(T* logits, T* logProbabilities, nuint n) => Row<LogSoftmaxOutput>(logits, logProbabilities, n, default);

    /// <summary>softmax of one long row of 16-bit storage (<paramref name="half"/>), computed in
    /// <paramref name="scratch"/> (n elements): each chunk is widened into the scratch by the pass that
    /// computes its statistics, and the pass that writes its output narrows each output as it
    /// computes it (<see cref="HalfStorage.StoreScaledExps"/>; a row too long to keep its
    /// exponentials writes the chunk's float32 outputs into the scratch and narrows them), so the
    /// 16-bit row is read once and written once, with no pass over the whole row just to convert
    /// it. The output may be exactly the input (every chunk is read before any output is written).</summary>
    public static void Softmax(HalfStorage half, T* scratch, nuint n) => Row<SoftmaxOutput>(scratch, scratch, n, half);

    /// <summary>log_softmax of one long row of 16-bit storage, as <see cref="Softmax(HalfStorage, T*, nuint)"/>.</summary>
    public static void LogSoftmax(HalfStorage half, T* scratch, nuint n) => Row<LogSoftmaxOutput>(scratch, scratch, n, half);

    /// <summary>Where a long row of 16-bit storage is read and written, and the conversions of its
    /// chunks to and from T (float32): <see cref="HalfRowToRowOperation{TKernel, TFormat}"/>'s rows.
    /// The default is a row stored in T itself, which needs no conversion.</summary>
    public readonly struct HalfStorage(ushort* input, ushort* output,
        delegate*<ushort*, T*, nuint, void> widen, delegate*<T*, ushort*, nuint, void> narrow,
        delegate*<in ScaledExps<TVec, T>, ushort*, nuint, void> storeScaledExps,
        delegate*<in LogSoftmaxOf<TVec, T>, ushort*, nuint, void> storeLogSoftmax)
    {
        public ushort* Input { get; } = input;
        public ushort* Output { get; } = output;
        public delegate*<ushort*, T*, nuint, void> Widen { get; } = widen;
        public delegate*<T*, ushort*, nuint, void> Narrow { get; } = narrow;

        /// <summary>Softmax's output pass of a chunk that kept its exponentials, narrowed as it is
        /// computed (<see cref="HalfConversion{TFormat}.StoreNarrowed"/>): the float32 outputs are
        /// never stored.</summary>
        public delegate*<in ScaledExps<TVec, T>, ushort*, nuint, void> StoreScaledExps { get; } = storeScaledExps;

        /// <summary>log_softmax's output pass of a chunk, narrowed as it is computed.</summary>
        public delegate*<in LogSoftmaxOf<TVec, T>, ushort*, nuint, void> StoreLogSoftmax { get; } = storeLogSoftmax;
    }

    /// <summary>
    /// Rows of at most this many chunks (2^20 columns) keep softmax's exponentials: the chunk pass
    /// stores exp(z − m_chunk) and the output pass scales each chunk by exp(m_chunk − max)/Σ, one
    /// exponential per element. Longer rows, whose chunk maxima would not fit on the stack,
    /// compute exp(z − max)/Σ again in the output pass. The choice depends on the length alone.
    /// </summary>
    public const long MaxChunksKeepingExps = 256;

    /// <summary>Whether a row of <paramref name="n"/> elements (at least <see cref="MinLength"/>) is
    /// short enough to keep its chunk pass's exponentials (<see cref="MaxChunksKeepingExps"/>).</summary>
    public static bool KeepsExps(nuint n) => (long)(n / ChunkLength) <= MaxChunksKeepingExps;

    private static void Row<TOutput>(T* z, T* output, nuint n, HalfStorage half)
        where TOutput : struct, IOutput
    {
        long chunks = (long)(n / ChunkLength);
        bool keepExps = TOutput.ScalesExps && chunks <= MaxChunksKeepingExps;
        double* maxima = stackalloc double[keepExps ? (int)chunks : 0];
        // log_softmax out of place stores its exponentials too, only to bring the output's lines
        // into the cache during the chunk pass, whose exponentials hide the misses, rather than in
        // the output pass, which has little arithmetic to hide them (design.md §5a).
        bool storeExps = keepExps || (!TOutput.ScalesExps && output != z);
        var job = new Job(z, output, n, keepExps ? maxima : null, half) { StoreExps = storeExps };
        int threads = Dispatch.ThreadsFor(1, (long)n, chunks);
        bool parallel = FoldChunks(ref job, chunks, threads);
        if (parallel && WorkerPool.TryRun(&StoreChunk<TOutput>, &job, chunks, threads, 0, out _))
        {
            WorkerPool.Release();
            return;
        }
        for (long k = 0; k < chunks; k++)
        {
            StoreChunk<TOutput>(&job, k, null); // element-wise: the same values on any thread
        }
    }

    /// <summary>
    /// The row maximum and <see cref="ExpSum"/> of a long row that <see cref="KeepsExps"/>, by the
    /// chunk pass of softmax: with <paramref name="exps"/> (n elements, may be exactly
    /// <paramref name="z"/>) each chunk's exp(z − m_chunk) is stored there and its maximum in
    /// <paramref name="chunkMaxima"/> (n / <see cref="ChunkLength"/> elements), for
    /// <see cref="ScaleChunks"/>; without, the row is only read. One read of the row where
    /// <see cref="RowLoop{TVec, T}"/> reads it twice (maximum, then sum). The hard-label
    /// cross-entropy's long rows (whose gradient is the exponentials scaled, less the smoothed
    /// weights, but at the label).
    /// </summary>
    public static ExpSum Statistics(T* z, T* exps, nuint n, double* chunkMaxima, out T max) =>
        Statistics(z, exps, n, chunkMaxima, null, false, out max, out _);

    /// <summary>
    /// <see cref="Statistics(T*, T*, nuint, double*, out T)"/> and the label-smoothing term of the
    /// hard-label cross-entropy, <paramref name="gaps"/> = Σ_j w_j·(max − z_j) (w = 1 where
    /// <paramref name="weight"/> is null), from the same single read: each chunk sums
    /// w_j·(m_chunk − z_j) and w_j while it is in the cache, and <see cref="GapStatistics"/> folds
    /// them in column order. Non-finite cases as the unsplit sum: a −∞ logit gives w_j·∞, a row
    /// of −∞ only NaN.
    /// </summary>
    public static ExpSum Statistics(T* z, T* exps, nuint n, double* chunkMaxima, T* weight, out T max, out double gaps) =>
        Statistics(z, exps, n, chunkMaxima, weight, true, out max, out gaps);

    private static ExpSum Statistics(T* z, T* exps, nuint n, double* chunkMaxima, T* weight, bool withGaps, out T max, out double gaps)
    {
        long chunks = (long)(n / ChunkLength);
        Debug.Assert(chunks >= 2 && chunks <= MaxChunksKeepingExps, "a long row that keeps its exponentials");
        var job = new Job(z, exps == null ? z : exps, n, exps == null ? null : chunkMaxima, default)
        {
            StoreExps = exps != null,
            Gaps = withGaps,
            Weight = weight,
        };
        FoldChunks(ref job, chunks, Dispatch.ThreadsFor(1, (long)n, chunks));
        max = job.Max;
        gaps = job.GapSum;
        return job.Sum;
    }

    /// <summary>exp(z_j − max) of element <paramref name="j"/> from what <see cref="Statistics(T*, T*, nuint, double*, out T)"/> stored:
    /// its exponential relative to its chunk's maximum, times exp(m_chunk − max).</summary>
    public static double ExpAt(T* exps, nuint n, double* chunkMaxima, T max, nuint j)
    {
        long chunk = Math.Min((long)(j / ChunkLength), (long)(n / ChunkLength) - 1); // the last chunk takes the remainder
        double chunkMax = chunkMaxima[chunk], rowMax = double.CreateTruncating(max);
        return chunkMax == rowMax ? double.CreateTruncating(exps[j])
            : chunkMax == double.NegativeInfinity ? 0.0 // a chunk of −∞ only, its stored values NaN
            : double.CreateTruncating(exps[j]) * Math.Exp(chunkMax - rowMax);
    }

    /// <summary>
    /// exps_j·exp(m_chunk − max)·<paramref name="scale"/> − <paramref name="offset"/>·w_j (w = 1
    /// where <paramref name="weight"/> is null) over the row <see cref="Statistics(T*, T*, nuint, double*, out T)"/> stored, in
    /// place: exp(z_j − max)·scale − offset·w_j, one rounding of the factor per chunk (the
    /// hard-label cross-entropy's gradient, <see cref="ScaledMinusWeights{TVec, T}"/>; softmax's
    /// scaling when the offset is 0). A chunk of −∞ only (stored NaN) counts its exponentials as 0
    /// while the row's maximum and the scale are finite (0·scale), and as NaN with a scale of ±∞ or
    /// NaN (as 0·∞). On the pool's threads when it is free; element-wise, so the same values on any
    /// thread.
    /// </summary>
    public static void ScaleChunks(T* exps, nuint n, double* chunkMaxima, T max, double scale, double offset, T* weight)
    {
        long chunks = (long)(n / ChunkLength);
        var job = new Job(exps, exps, n, chunkMaxima, default) { Max = max, Scale = scale, Offset = offset, Weight = weight };
        int threads = Dispatch.ThreadsFor(1, (long)n, chunks);
        if (threads > 1 && WorkerPool.TryRun(&ScaleChunk, &job, chunks, threads, 0, out _))
        {
            WorkerPool.Release();
            return;
        }
        for (long k = 0; k < chunks; k++)
        {
            ScaleChunk(&job, k, null);
        }
    }

    private static void ScaleChunk(void* state, long chunk, double* unused)
    {
        var job = (Job*)state;
        (nuint start, nuint length) = Bounds(job->Length, chunk);
        T* exps = job->Output + start;
        double chunkMax = job->ChunkMaxima[chunk], max = double.CreateTruncating(job->Max);
        if (job->Offset == 0)
        {
            ScaleExpsOfChunk(exps, length, chunkMax, max, job->Scale, 1.0);
            return;
        }
        if (chunkMax == double.NegativeInfinity && max > double.NegativeInfinity)
        {
            NativeMemory.Clear(exps, length * (nuint)sizeof(T)); // stored NaN: exponentials of 0, scaled by 0 (or NaN)
        }
        T factor = T.CreateTruncating(Math.Exp(chunkMax - max) * job->Scale);
        T* weight = job->Weight == null ? null : job->Weight + start;
        RowLoop<TVec, T>.Store(new ScaledMinusWeights<TVec, T>(exps, factor, T.CreateTruncating(job->Offset), weight), exps, length);
    }

    /// <summary>
    /// One chunk's stored exp(z − m_chunk) times exp(m_chunk − max)·factor/divisor, in place, the
    /// factor of the chunk rounded once (softmax: 1/S; the cross-entropy gradient: s·Σy/S). A chunk
    /// of −∞ only (stored NaN, −∞ − −∞) gets 0 while the row's maximum and the factor are finite,
    /// and NaN with a factor of ±∞ or NaN (as 0·∞).
    /// </summary>
    private static void ScaleExpsOfChunk(T* exps, nuint length, double chunkMax, double max, double factor, double divisor)
    {
        if (!ChunkScale(chunkMax, max, factor, divisor, out T scale))
        {
            NativeMemory.Clear(exps, length * (nuint)sizeof(T));
            return;
        }
        if (scale < T.Zero)
        {
            RowLoop<TVec, T>.Store(new Scaled<TVec, T>(exps, scale), exps, length);
        }
        else
        {
            RowLoop<TVec, T>.Store(new ScaledExps<TVec, T>(exps, scale), exps, length); // ≥ 0 or NaN
        }
    }

    /// <summary>The factor of a chunk's stored exponentials (<see cref="ScaleExpsOfChunk"/>), or
    /// false when the chunk's outputs are all 0 instead: a chunk of −∞ only, whose stored values are
    /// NaN, while the row's maximum and the factor are finite.</summary>
    private static bool ChunkScale(double chunkMax, double max, double factor, double divisor, out T scale)
    {
        if (chunkMax == double.NegativeInfinity && max > double.NegativeInfinity && double.IsFinite(factor))
        {
            scale = T.Zero;
            return false;
        }
        scale = T.CreateTruncating(Math.Exp(chunkMax - max) * factor / divisor);
        return true;
    }

    /// <summary>The chunk pass: every chunk's statistics (on the pool's threads when it is free and
    /// <paramref name="threads"/> is more than 1), folded in column order into the job's
    /// <see cref="Job.Max"/> and <see cref="Job.Sum"/>, each chunk's maximum kept when the job has
    /// room for them. Returns whether the chunks ran on the pool.</summary>
    private static bool FoldChunks(ref Job job, long chunks, int threads)
    {
        var fold = new RowStatistics();
        var gapFold = new GapStatistics();
        double* maxima = job.ChunkMaxima;
        double* statistics = null;
        void* state = Unsafe.AsPointer(ref job); // the caller's frame, which outlives every chunk
        int perChunk = job.Gaps ? 5 : 3; // maximum, ExpSum's two parts; with gaps, Σ w·(m_chunk − z) and Σ w
        bool parallel = threads > 1 && WorkerPool.TryRun(&StatisticsOfChunk, state, chunks, threads, perChunk, out statistics);
        double* chunk = stackalloc double[5];
        job.InOrder = !parallel;
        try
        {
            for (long k = 0; k < chunks; k++)
            {
                double* these = parallel ? statistics + perChunk * k : chunk;
                if (!parallel)
                {
                    StatisticsOfChunk(state, k, these);
                }
                fold.Add(these[0], these[1], these[2]);
                if (job.Gaps)
                {
                    gapFold.Add(these[0], these[3], these[4]);
                }
                if (maxima != null)
                {
                    maxima[k] = these[0];
                }
            }
        }
        finally
        {
            if (parallel)
            {
                WorkerPool.Release(); // the statistics are read
            }
        }
        job.Max = T.CreateTruncating(fold.Max);
        job.Sum = fold.Sum;
        job.GapSum = job.Gaps ? gapFold.Total(fold.Max) : 0.0;
        return parallel;
    }

    /// <summary>Chunk <paramref name="chunk"/>'s start and length in a row of <paramref name="n"/>.</summary>
    public static (nuint Start, nuint Length) Bounds(nuint n, long chunk)
    {
        nuint start = (nuint)chunk * ChunkLength;
        nuint end = (nuint)chunk + 1 == n / ChunkLength ? n : start + ChunkLength;
        return (start, end - start);
    }

    /// <summary>A chunk's maximum and the two parts of its <see cref="ExpSum"/> relative to it.</summary>
    private static void StatisticsOfChunk(void* state, long chunk, double* statistics)
    {
        var job = (Job*)state;
        (nuint start, nuint length) = Bounds(job->Length, chunk);
        T* z = job->Input + start;
        if (job->Half.Input != null)
        {
            job->Half.Widen(job->Half.Input + start, z, length);
        }
        T max = RowLoop<TVec, T>.Max(z, length);
        if (T.IsNegativeInfinity(max) && VecMath.ContainsNaN(z, length))
        {
            // The maximum of a chunk of −∞ and NaN can come out −∞ (x86 MAXPS keeps its second
            // operand when one is NaN), and the fold skips −∞ chunks: a NaN maximum poisons it instead.
            max = T.NaN;
        }
        if (job->Gaps)
        {
            // Before the exponentials may overwrite z (in place). A chunk of −∞ only takes its gaps
            // relative to 0: w_j·∞, as relative to any finite row maximum (GapStatistics).
            T* w = job->Weight == null ? null : job->Weight + start;
            T shift = T.IsNegativeInfinity(max) ? T.Zero : max;
            double gaps = RowLoop<TVec, T>.Sum(new WeightedGaps<TVec, T>(z, shift, w), length);
            statistics[3] = typeof(T) == typeof(float) && !double.IsFinite(gaps) ? WideGaps.Weighted(z, shift, w, length) : gaps;
            double weights = w == null ? length : RowLoop<TVec, T>.Sum(new Elements<TVec, T>(w), length);
            statistics[4] = typeof(T) == typeof(float) && !double.IsFinite(weights) ? WideGaps.Weights(w, length) : weights;
        }
        T* exps = job->StoreExps ? job->Output + start : null; // may be exactly z (softmax in place): SumExps reads first
        bool prefetchNext = job->InOrder && chunk + 1 < (long)(job->Length / ChunkLength); // then this chunk is not the last: length = ChunkLength
        ExpSum sum = prefetchNext && job->Half.Input != null
            ? RowLoop<TVec, T>.SumExps(new ExpShiftedFetchingHalves<TVec, T>(z, max, job->Half.Input + start + length, job->Half.Output + start), exps, length)
            : ExpShiftedAhead<TVec, T>.SumExps<RowLoop<TVec, T>>(z, max, exps, length, prefetchNext ? length : 0);
        statistics[0] = double.CreateTruncating(max);
        statistics[1] = sum.Others;
        statistics[2] = sum.AtMax;
    }

    private static void StoreChunk<TOutput>(void* state, long chunk, double* unused)
        where TOutput : struct, IOutput
    {
        var job = (Job*)state;
        (nuint start, nuint length) = Bounds(job->Length, chunk);
        if (job->Half.Output != null && job->ChunkMaxima != null)
        {
            // Softmax keeping its exponentials: ScaleExpsOfChunk's values, narrowed as they are
            // computed. The factor is 1/S ≥ 0 or NaN, never the negative one of ScaleExpsOfChunk.
            ushort* output = job->Half.Output + start;
            if (ChunkScale(job->ChunkMaxima[chunk], double.CreateTruncating(job->Max), 1.0, job->Sum.Total, out T scale))
            {
                Debug.Assert(!(scale < T.Zero), "softmax's scale is never negative");
                job->Half.StoreScaledExps(new ScaledExps<TVec, T>(job->Output + start, scale), output, length);
            }
            else
            {
                NativeMemory.Clear(output, length * sizeof(ushort)); // +0 in both 16-bit formats
            }
            return;
        }
        if (job->Half.Output != null && !TOutput.ScalesExps)
        {
            // log_softmax: LogSoftmaxOutput's values, narrowed as they are computed.
            job->Half.StoreLogSoftmax(LogSoftmaxOutput.Of(job->Input + start, job->Max, job->Sum), job->Half.Output + start, length);
            return;
        }
        OutputOfChunk<TOutput>(job, chunk, start, length);
        if (job->Half.Output != null)
        {
            job->Half.Narrow(job->Output + start, job->Half.Output + start, length);
        }
    }

    private static void OutputOfChunk<TOutput>(Job* job, long chunk, nuint start, nuint length)
        where TOutput : struct, IOutput
    {
        if (job->ChunkMaxima == null)
        {
            TOutput.Store(job->Input + start, job->Output + start, length, job->Max, job->Sum);
            return;
        }
        // exp(m_chunk − max)·1/S: a chunk of −∞ only gets probabilities 0.
        ScaleExpsOfChunk(job->Output + start, length, job->ChunkMaxima[chunk], double.CreateTruncating(job->Max), 1.0, job->Sum.Total);
    }

    /// <summary>What the chunks of one row share.</summary>
    private struct Job(T* input, T* output, nuint length, double* chunkMaxima, HalfStorage half)
    {
        /// <summary>The row's 16-bit storage, when Input and Output are its float32 scratch; else default.</summary>
        public readonly HalfStorage Half = half;

        public readonly T* Input = input;
        public readonly T* Output = output;
        public readonly nuint Length = length;

        /// <summary>Each chunk's maximum, when the chunk pass keeps its exponentials in the output; else null.</summary>
        public readonly double* ChunkMaxima = chunkMaxima;
        public T Max;
        public ExpSum Sum;

        /// <summary><see cref="ScaleChunks"/>'s factor of exp(z − max).</summary>
        public double Scale;

        /// <summary><see cref="ScaleChunks"/>'s multiple of the weights subtracted.</summary>
        public double Offset;

        /// <summary>The class weights of the gaps and of <see cref="ScaleChunks"/> (null: all 1).</summary>
        public T* Weight;

        /// <summary>Whether the chunk pass also sums the label-smoothing gaps, folded into <see cref="GapSum"/>.</summary>
        public bool Gaps;

        /// <summary>Σ_j w_j·(max − z_j), when <see cref="Gaps"/>.</summary>
        public double GapSum;

        /// <summary>Whether the chunk pass stores its exponentials into the output (softmax keeping them;
        /// log_softmax out of place, to fetch the output's lines early).</summary>
        public bool StoreExps;

        /// <summary>Whether the chunks run in order on one thread, so a chunk's pass may prefetch the next.</summary>
        public bool InOrder;
    }

    /// <summary>The output pass, from the row's maximum and sum.</summary>
    private interface IOutput
    {
        /// <summary>Whether the output is the exponentials scaled (softmax), so the chunk pass may keep them.</summary>
        static abstract bool ScalesExps { get; }

        static abstract void Store(T* z, T* output, nuint n, T max, ExpSum sum);
    }

    private readonly struct SoftmaxOutput : IOutput
    {
        public static bool ScalesExps => true;

        public static void Store(T* z, T* output, nuint n, T max, ExpSum sum) =>
            RowLoop<TVec, T>.Store(new ExpShiftedScaled<TVec, T>(z, max, T.CreateTruncating(1.0 / sum.Total)), output, n);
    }

    private readonly struct LogSoftmaxOutput : IOutput
    {
        public static bool ScalesExps => false;

        public static void Store(T* z, T* output, nuint n, T max, ExpSum sum) =>
            RowLoop<TVec, T>.Store(Of(z, max, sum), output, n);

        /// <summary>The output's row function: z − max − log S.</summary>
        public static LogSoftmaxOf<TVec, T> Of(T* z, T max, ExpSum sum) => new(z, max, T.CreateTruncating(sum.Log));
    }
}

/// <summary>
/// The fold of chunk statistics, in column order, into a row's maximum and <see cref="ExpSum"/>:
/// a chunk below the running maximum adds its sum scaled by exp(m_chunk − max); a chunk above it
/// rescales what was summed so far. A chunk whose logits are all −∞ adds nothing (its own
/// statistics are NaN, −∞ − −∞); a row whose chunks are all −∞ gets a NaN sum, as an unsplit all
/// −∞ row. NaN and +∞ poison the sum as they do unsplit.
/// </summary>
internal struct RowStatistics()
{
    /// <summary>The row's maximum so far (−∞ before any finite chunk).</summary>
    public double Max { get; private set; } = double.NegativeInfinity;

    private double _others;
    private double _atMax;

    /// <summary>The row's Σ exp(z − max), split as <see cref="ExpSum"/>; NaN for an all −∞ row.</summary>
    public readonly ExpSum Sum => Max == double.NegativeInfinity ? new ExpSum(double.NaN, double.NaN) : new ExpSum(_others, _atMax);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Add(double max, double others, double atMax)
    {
        if (max == double.NegativeInfinity)
        {
            return;
        }
        if (max > Max)
        {
            _others = (_others + _atMax) * Math.Exp(Max - max) + others;
            _atMax = atMax;
            Max = max;
        }
        else if (max == Max)
        {
            _others += others;
            _atMax += atMax;
        }
        else
        {
            _others += (others + atMax) * Math.Exp(max - Max); // NaN (a NaN chunk) lands here too
        }
    }
}

/// <summary>
/// The fold, in column order, of chunk statistics g_k = Σ_(j∈k) w_j·(m_k − z_j) and W_k = Σ_(j∈k) w_j
/// into a row's Σ_j w_j·(max − z_j) = Σ_k g_k + (max − m_k)·W_k, every term of it ≥ 0 for
/// non-negative weights, so no cancellation: a chunk above the running maximum first adds
/// W·(m_k − running maximum) for the chunks before it. A chunk of −∞ only brings its w_j·∞ (its
/// gaps relative to 0), whatever the maximum; a row of −∞ only gets NaN, as the unsplit sum
/// (−∞ − −∞). NaN poisons the sum.
/// </summary>
internal struct GapStatistics()
{
    /// <summary>The largest chunk maximum so far, among chunks that are not −∞ only.</summary>
    private double _max = double.NegativeInfinity;
    private double _gaps;
    private double _weights;
    private double _ofNegativeInfinity;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Add(double max, double gaps, double weights)
    {
        if (max == double.NegativeInfinity)
        {
            _ofNegativeInfinity += gaps;
            return;
        }
        if (max > _max)
        {
            if (_weights != 0) // none before, or weights of 0: nothing to move (and no 0·∞ against the first)
            {
                _gaps += _weights * (max - _max);
            }
            _max = max;
        }
        _gaps += gaps + (_max - max) * weights; // NaN (a NaN chunk) lands here too
        _weights += weights;
    }

    /// <summary>The row's Σ_j w_j·(max − z_j), given its maximum.</summary>
    public readonly double Total(double rowMax) => rowMax == double.NegativeInfinity ? double.NaN : _gaps + _ofNegativeInfinity;
}
