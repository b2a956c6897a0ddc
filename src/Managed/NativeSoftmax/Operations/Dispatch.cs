using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using System.Runtime.CompilerServices;
using NativeSoftmax.Simd;
using NativeSoftmax.Threading;

namespace NativeSoftmax.Operations;

/// <summary>Runs a prepared operation: picks the SIMD width, and goes through the rows by blocks.</summary>
internal static class Dispatch
{
    /// <summary>
    /// The elements a block of rows aims at. An operation runs one block of rows at a time and
    /// returns the block's loss total, and the block totals are added in block order. How rows
    /// are grouped into blocks depends only on the row length, never on the thread count, so the
    /// threads that run blocks (<see cref="WorkerPool"/>) change no bit of the result.
    /// </summary>
    public const long ElementsPerBlock = 16384;

    /// <summary>The most rows in one block.</summary>
    public const long MaxRowsPerBlock = 64;

    /// <summary>
    /// Work per thread below which a call does not wake another thread, in elements (each row
    /// counted as its length plus <see cref="RowOverhead"/>): about 15 µs of one core's time at
    /// the short-row rate, more than a worker takes to wake.
    /// </summary>
    public const long MinElementsPerThread = 32768;

    /// <summary>What a row costs beyond its elements, in elements (set-up, reductions, a log).</summary>
    public const long RowOverhead = 16;

    /// <summary>Rows per block for rows of <paramref name="cols"/> elements: at least 1, at most
    /// <see cref="MaxRowsPerBlock"/>.</summary>
    public static long RowsPerBlock(long cols) => Math.Clamp(ElementsPerBlock / Math.Max(cols, 1), 1, MaxRowsPerBlock);

    /// <summary>How many threads are worth using on <paramref name="rows"/> rows of
    /// <paramref name="cols"/> elements cut into <paramref name="blocks"/> blocks.</summary>
    public static int ThreadsFor(long rows, long cols, long blocks)
    {
        long work = rows * (cols + RowOverhead); // ≤ 2^58: shapes are capped at 2^57 bytes
        long worthIt = Math.Max(1, work / MinElementsPerThread);
        return (int)Math.Min(Math.Min(WorkerPool.ThreadCount, worthIt), blocks);
    }

    /// <summary>
    /// Runs at the widest width the CPU accelerates that fits in one row; rows shorter than the
    /// narrowest vector run one lane at a time.
    /// </summary>
    public static void Run<TOperation, T>(in Prepared<TOperation> prepared)
        where TOperation : struct, IRowOperation<TOperation, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        long cols = prepared.Operation.Cols;
        if (Vec512<T>.IsHardwareAccelerated && cols >= Vec512<T>.Count)
        {
            RunBlocks<TOperation, T, Vec512<T>>(in prepared);
        }
        else if (Vec256<T>.IsHardwareAccelerated && cols >= Vec256<T>.Count)
        {
            RunBlocks<TOperation, T, Vec256<T>>(in prepared);
        }
        else if (Vec128<T>.IsHardwareAccelerated && cols >= Vec128<T>.Count)
        {
            RunBlocks<TOperation, T, Vec128<T>>(in prepared);
        }
        else
        {
            RunBlocks<TOperation, T, VecScalar<T>>(in prepared);
        }
    }

    /// <summary>
    /// Runs at a chosen width whatever the CPU (a width it lacks is emulated in software), falling
    /// back to one lane for rows shorter than a vector: how tests and benchmarks reach every width.
    /// </summary>
    public static void RunAtWidth<TOperation, T, TVec>(in Prepared<TOperation> prepared)
        where TOperation : struct, IRowOperation<TOperation, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TVec : struct, IVec<TVec, T>
    {
        if (prepared.Operation.Cols >= TVec.Count)
        {
            RunBlocks<TOperation, T, TVec>(in prepared);
        }
        else
        {
            RunBlocks<TOperation, T, VecScalar<T>>(in prepared);
        }
    }

    /// <summary>Every block of <see cref="RowsPerBlock"/> rows, on as many threads as the work is
    /// worth; their loss totals added in block order, then the operation's finish. Each thread
    /// reserves its scratch before it runs a block (<see cref="IRowOperation{TSelf, T}.ReserveScratch"/>):
    /// the caller first of all, so that memory the system refuses fails the call before anything
    /// is written, and each worker as it joins, leaving the job to the others when it cannot.</summary>
    private static unsafe void RunBlocks<TOperation, T, TVec>(in Prepared<TOperation> prepared)
        where TOperation : struct, IRowOperation<TOperation, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TVec : struct, IVec<TVec, T>
    {
        long rows = prepared.Operation.Rows;
        long rowsPerBlock = RowsPerBlock(prepared.Operation.Cols);
        long blocks = rows == 0 ? 0 : (rows - 1) / rowsPerBlock + 1;
        double total = 0;
        int threads = ThreadsFor(rows, prepared.Operation.Cols, blocks);
        // A copy on this stack frame, which outlives every block (the pool returns only after all
        // have run), so the workers may hold its address.
        Prepared<TOperation> local = prepared;
        var job = new BlockJob(Unsafe.AsPointer(ref local), rows, rowsPerBlock);
        if (blocks > 0)
        {
            TOperation.ReserveScratch<TVec>(in prepared, job.MaxBlockRows);
        }
        if (threads > 1 && WorkerPool.TryRun(&RunBlock<TOperation, T, TVec>, &ReserveBlockScratch<TOperation, T, TVec>, &job, blocks,
                threads, 1, out double* totals))
        {
            try
            {
                for (long b = 0; b < blocks; b++)
                {
                    total += totals[b];
                }
            }
            finally
            {
                WorkerPool.Release();
            }
        }
        else
        {
            double blockTotal;
            for (long b = 0; b < blocks; b++)
            {
                RunBlock<TOperation, T, TVec>(&job, b, &blockTotal);
                total += blockTotal;
            }
        }
        TOperation.Finish(in prepared, total);
    }

    /// <summary>Block <paramref name="block"/> of a <see cref="BlockJob"/>; writes its rows' loss total.</summary>
    private static unsafe void RunBlock<TOperation, T, TVec>(void* state, long block, double* total)
        where TOperation : struct, IRowOperation<TOperation, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TVec : struct, IVec<TVec, T>
    {
        var job = (BlockJob*)state;
        long first = block * job->RowsPerBlock;
        *total = TOperation.Run<TVec>(in Unsafe.AsRef<Prepared<TOperation>>(job->Prepared), first, Math.Min(job->Rows, first + job->RowsPerBlock));
    }

    /// <summary>A worker's <see cref="IRowOperation{TSelf, T}.ReserveScratch"/> for the blocks of a
    /// <see cref="BlockJob"/>: false, for the worker to stay out of the job, when the system refuses
    /// the memory.</summary>
    private static unsafe bool ReserveBlockScratch<TOperation, T, TVec>(void* state)
        where TOperation : struct, IRowOperation<TOperation, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TVec : struct, IVec<TVec, T>
    {
        var job = (BlockJob*)state;
        try
        {
            TOperation.ReserveScratch<TVec>(in Unsafe.AsRef<Prepared<TOperation>>(job->Prepared), job->MaxBlockRows);
            return true;
        }
        catch (OutOfMemoryException)
        {
            return false;
        }
    }

    /// <summary>What every block of one call shares: the prepared operation (by address), the row
    /// count and the rows per block.</summary>
    private readonly unsafe struct BlockJob(void* prepared, long rows, long rowsPerBlock)
    {
        public void* Prepared { get; } = prepared;
        public long Rows { get; } = rows;
        public long RowsPerBlock { get; } = rowsPerBlock;

        /// <summary>The rows of the largest block: what a thread's scratch must hold.</summary>
        public long MaxBlockRows => Math.Min(Rows, RowsPerBlock);
    }

    /// <summary>
    /// The instruction-set path the widest accelerated width runs on, named as nsm_isa() names it
    /// (native/include/nativesoftmax.h): "avx512", "avx2", "sse4.2" or "neon"; null when no
    /// vector width is accelerated (only a JIT without SIMD, never a NativeAOT variant).
    /// </summary>
    public static string? Isa =>
        Vector512.IsHardwareAccelerated ? "avx512"
        : Vector256.IsHardwareAccelerated && Avx2.IsSupported ? "avx2"
        : AdvSimd.IsSupported ? "neon"
        : Sse42.IsSupported ? "sse4.2"
        : null;
}
