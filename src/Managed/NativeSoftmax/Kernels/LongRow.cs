using System.Numerics;
using System.Runtime.CompilerServices;
using NativeSoftmax.Operations;
using NativeSoftmax.Simd;
using NativeSoftmax.Threading;

namespace NativeSoftmax.Kernels;

/// <summary>
/// Softmax and log_softmax of rows of at least <see cref="MinLength"/> elements, by chunks of
/// columns: each chunk's maximum and <see cref="ExpSum"/> relative to it (read while the chunk is
/// in the first-level cache), the chunks folded in column order into the row's, then one pass
/// that writes the output. A long row is thus read from memory twice and written once, and its
/// chunks can run on several threads: where a chunk's statistics are computed does not change
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
    public static void Softmax(T* logits, T* probabilities, nuint n) => Row<SoftmaxOutput>(logits, probabilities, n);

    /// <summary>log_softmax of one long row; <paramref name="logProbabilities"/> may be exactly <paramref name="logits"/>.</summary>
    public static void LogSoftmax(T* logits, T* logProbabilities, nuint n) => Row<LogSoftmaxOutput>(logits, logProbabilities, n);

    private static void Row<TOutput>(T* z, T* output, nuint n)
        where TOutput : struct, IOutput
    {
        long chunks = (long)(n / ChunkLength);
        var job = new Job(z, output, n);
        int threads = Dispatch.ThreadsFor(1, (long)n, chunks);
        var fold = new RowStatistics();
        if (threads > 1 && WorkerPool.TryRun(&StatisticsOfChunk, &job, chunks, threads, 3, out double* statistics))
        {
            for (long k = 0; k < chunks; k++)
            {
                fold.Add(statistics[3 * k], statistics[3 * k + 1], statistics[3 * k + 2]);
            }
            job.Max = T.CreateTruncating(fold.Max);
            job.Sum = fold.Sum;
            if (WorkerPool.TryRun(&StoreChunk<TOutput>, &job, chunks, threads, 0, out _))
            {
                return;
            }
        }
        else
        {
            double* chunk = stackalloc double[3];
            for (long k = 0; k < chunks; k++)
            {
                StatisticsOfChunk(&job, k, chunk);
                fold.Add(chunk[0], chunk[1], chunk[2]);
            }
            job.Max = T.CreateTruncating(fold.Max);
            job.Sum = fold.Sum;
        }
        TOutput.Store(z, output, n, job.Max, job.Sum); // element-wise: the same values as by chunks
    }

    /// <summary>Chunk <paramref name="chunk"/>'s [start, end) of a row of <paramref name="n"/>.</summary>
    private static (nuint Start, nuint Length) Bounds(nuint n, long chunk)
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
        T max = RowLoop<TVec, T>.Max(z, length);
        ExpSum sum = RowLoop<TVec, T>.SumExps(new ExpShifted<TVec, T>(z, max), null, length);
        statistics[0] = double.CreateTruncating(max);
        statistics[1] = sum.Others;
        statistics[2] = sum.AtMax;
    }

    private static void StoreChunk<TOutput>(void* state, long chunk, double* unused)
        where TOutput : struct, IOutput
    {
        var job = (Job*)state;
        (nuint start, nuint length) = Bounds(job->Length, chunk);
        TOutput.Store(job->Input + start, job->Output + start, length, job->Max, job->Sum);
    }

    /// <summary>What the chunks of one row share.</summary>
    private struct Job(T* input, T* output, nuint length)
    {
        public readonly T* Input = input;
        public readonly T* Output = output;
        public readonly nuint Length = length;
        public T Max;
        public ExpSum Sum;
    }

    /// <summary>The output pass, from the row's maximum and sum.</summary>
    private interface IOutput
    {
        static abstract void Store(T* z, T* output, nuint n, T max, ExpSum sum);
    }

    private readonly struct SoftmaxOutput : IOutput
    {
        public static void Store(T* z, T* output, nuint n, T max, ExpSum sum) =>
            RowLoop<TVec, T>.Store(new ExpShiftedScaled<TVec, T>(z, max, T.CreateTruncating(1.0 / sum.Total)), output, n);
    }

    private readonly struct LogSoftmaxOutput : IOutput
    {
        public static void Store(T* z, T* output, nuint n, T max, ExpSum sum) =>
            RowLoop<TVec, T>.Store(new LogSoftmaxOf<TVec, T>(z, max, T.CreateTruncating(sum.Log)), output, n);
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
