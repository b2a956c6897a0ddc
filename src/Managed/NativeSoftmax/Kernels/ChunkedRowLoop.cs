using System.Numerics;
using System.Runtime.CompilerServices;
using NativeSoftmax.Operations;
using NativeSoftmax.Simd;
using NativeSoftmax.Threading;

namespace NativeSoftmax.Kernels;

/// <summary>
/// The loops of <see cref="IRowLoop{TVec, T}"/> for one long row (at least
/// <see cref="LongRow{TVec, T}.MinLength"/> elements), cut into the chunks of
/// <see cref="LongRow{TVec, T}"/> so that the chunks of one row can run on several threads: each
/// chunk is <see cref="RowLoop{TVec, T}"/>'s loop over its own columns, and the chunks' maxima and
/// sums are folded in column order. The cut depends on the length alone and the fold's order is
/// fixed, so a row gives the same bits on any number of threads. Kernels that are not written by
/// chunks themselves (soft-target cross-entropy, the backward passes) run long rows through this
/// loop type; hard-label cross-entropy (up to 2^20 + 4095 classes) takes
/// <see cref="LongRow{TVec, T}.Statistics(T*, T*, nuint, double*, T*, out T, out double)"/> instead, which reads the row once for all of them.
/// </summary>
/// <remarks>
/// A chunked store is as in place as <see cref="RowLoop{TVec, T}.Store"/> for functions that read
/// each row at the positions they compute (every row function of this library): a chunk's
/// function reads only that chunk's columns. Threads are taken only when the pool is free (a call
/// that splits its rows over the pool runs each long row's chunks on the row's own thread).
/// </remarks>
internal readonly unsafe struct ChunkedRowLoop<TVec, T> : IRowLoop<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    /// <summary>Whether a row of <paramref name="n"/> elements goes by chunks (as <see cref="LongRow{TVec, T}.Fits"/>).</summary>
    public static bool Fits(nuint n) => LongRow<TVec, T>.Fits(n);

    /// <inheritdoc/>
    public static T Max(T* x, nuint n)
    {
        var job = new Job<Elements<TVec, T>>(new Elements<TVec, T>(x), x, n);
        var fold = new MaxFold();
        Run(&MaxOfChunk, ref job, ref fold);
        return T.CreateTruncating(fold.Max);
    }

    /// <inheritdoc/>
    public static void Store<TFunction>(in TFunction f, T* destination, nuint n)
        where TFunction : struct, IRowFunction<TVec, T>
    {
        var job = new Job<TFunction>(f, destination, n);
        var fold = new NoFold();
        Run(&StoreChunk<TFunction>, ref job, ref fold);
    }

    /// <inheritdoc/>
    public static double Sum<TFunction>(in TFunction f, nuint n)
        where TFunction : struct, IRowFunction<TVec, T>
    {
        var job = new Job<TFunction>(f, null, n);
        var fold = new SumFold();
        Run(&SumChunk<TFunction>, ref job, ref fold);
        return fold.Total;
    }

    /// <inheritdoc/>
    /// <remarks>Each chunk's two parts are added in column order. A chunk of total 2 or more may
    /// come unsplit, as (total − 1, 1): the row's total is then at least 2 too, where the split is
    /// not needed (<see cref="RowLoop{TVec, T}.SplitBelow"/>).</remarks>
    public static ExpSum SumExps<TFunction>(in TFunction f, T* storeTo, nuint n)
        where TFunction : struct, IRowFunction<TVec, T>
    {
        var job = new Job<TFunction>(f, storeTo, n);
        var fold = new ExpSumFold();
        Run(&SumExpsOfChunk<TFunction>, ref job, ref fold);
        return new ExpSum(fold.Others, fold.AtMax);
    }

    /// <summary>Runs <paramref name="chunkBody"/> on every chunk, on the pool's threads when it is
    /// free and the row is worth it, and hands each chunk's results to <paramref name="fold"/> in
    /// column order, on the calling thread. The job lives on the caller's frame, which outlives
    /// every chunk (the pool returns once all have run).</summary>
    private static void Run<TFunction, TFold>(delegate*<void*, long, double*, void> chunkBody, ref Job<TFunction> job, ref TFold fold)
        where TFunction : struct, IRowFunction<TVec, T>
        where TFold : struct, IFold
    {
        nuint n = job.Length;
        void* state = Unsafe.AsPointer(ref job);
        long chunks = (long)(n / LongRow<TVec, T>.ChunkLength);
        int threads = Dispatch.ThreadsFor(1, (long)n, chunks);
        if (threads > 1 && WorkerPool.TryRun(chunkBody, state, chunks, threads, TFold.ResultsPerChunk, out double* results))
        {
            try
            {
                for (long k = 0; k < chunks; k++)
                {
                    fold.Add(results + k * TFold.ResultsPerChunk);
                }
            }
            finally
            {
                WorkerPool.Release();
            }
            return;
        }
        double* these = stackalloc double[2];
        for (long k = 0; k < chunks; k++)
        {
            chunkBody(state, k, these);
            fold.Add(these);
        }
    }

    private static void MaxOfChunk(void* state, long chunk, double* result)
    {
        ref Job<Elements<TVec, T>> job = ref Unsafe.AsRef<Job<Elements<TVec, T>>>(state);
        (nuint start, nuint length) = LongRow<TVec, T>.Bounds(job.Length, chunk);
        *result = double.CreateTruncating(RowLoop<TVec, T>.Max(job.Row + start, length));
    }

    private static void StoreChunk<TFunction>(void* state, long chunk, double* unused)
        where TFunction : struct, IRowFunction<TVec, T>
    {
        ref Job<TFunction> job = ref Unsafe.AsRef<Job<TFunction>>(state);
        (nuint start, nuint length) = LongRow<TVec, T>.Bounds(job.Length, chunk);
        RowLoop<TVec, T>.Store(new From<TFunction>(job.Function, start), job.Row + start, length);
    }

    private static void SumChunk<TFunction>(void* state, long chunk, double* result)
        where TFunction : struct, IRowFunction<TVec, T>
    {
        ref Job<TFunction> job = ref Unsafe.AsRef<Job<TFunction>>(state);
        (nuint start, nuint length) = LongRow<TVec, T>.Bounds(job.Length, chunk);
        *result = RowLoop<TVec, T>.Sum(new From<TFunction>(job.Function, start), length);
    }

    private static void SumExpsOfChunk<TFunction>(void* state, long chunk, double* result)
        where TFunction : struct, IRowFunction<TVec, T>
    {
        ref Job<TFunction> job = ref Unsafe.AsRef<Job<TFunction>>(state);
        (nuint start, nuint length) = LongRow<TVec, T>.Bounds(job.Length, chunk);
        T* storeTo = job.Row == null ? null : job.Row + start;
        ExpSum sum = RowLoop<TVec, T>.SumExps(new From<TFunction>(job.Function, start), storeTo, length);
        result[0] = sum.Others;
        result[1] = sum.AtMax;
    }

    /// <summary>How the chunks' results are combined, in column order.</summary>
    private interface IFold
    {
        static abstract int ResultsPerChunk { get; }

        void Add(double* chunkResults);
    }

    private struct MaxFold() : IFold
    {
        public double Max = double.NegativeInfinity;

        public static int ResultsPerChunk => 1;

        // NaN compares false and is skipped, as RowLoop's maximum leaves NaN unspecified: a NaN
        // still poisons the row's sum.
        public void Add(double* chunkResults) => Max = chunkResults[0] > Max ? chunkResults[0] : Max;
    }

    private struct SumFold : IFold
    {
        public double Total;

        public static int ResultsPerChunk => 1;

        public void Add(double* chunkResults) => Total += chunkResults[0];
    }

    private struct ExpSumFold : IFold
    {
        public double Others;
        public double AtMax;

        public static int ResultsPerChunk => 2;

        public void Add(double* chunkResults)
        {
            Others += chunkResults[0];
            AtMax += chunkResults[1];
        }
    }

    private struct NoFold : IFold
    {
        public static int ResultsPerChunk => 0;

        public readonly void Add(double* chunkResults)
        {
        }
    }

    /// <summary>What the chunks of one loop share: the function, the row it stores to (or the row
    /// whose maximum is taken; null for a sum without stores) and the row's length.</summary>
    private readonly struct Job<TFunction>(TFunction function, T* row, nuint length)
        where TFunction : struct, IRowFunction<TVec, T>
    {
        public readonly TFunction Function = function;
        public readonly T* Row = row;
        public readonly nuint Length = length;
    }

    /// <summary>f at the columns of a chunk: f(start + i).</summary>
    private readonly struct From<TFunction>(TFunction f, nuint start) : IRowFunction<TVec, T>
        where TFunction : struct, IRowFunction<TVec, T>
    {
        public static bool IsNonNegative => TFunction.IsNonNegative;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public TVec Apply(nuint i) => f.Apply(start + i);
    }
}
