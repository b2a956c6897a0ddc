using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Operations;

/// <summary>Runs a prepared operation: picks the SIMD width, and goes through the rows by blocks.</summary>
internal static class Dispatch
{
    /// <summary>
    /// Rows per block. An operation runs one block at a time and returns the block's loss total;
    /// the block totals are added in block order. The block size is a constant, independent of
    /// any thread count, so a scheduler that runs blocks on several threads (and adds their
    /// totals in the same order) gives the same bits as this single-threaded loop.
    /// </summary>
    public const long RowsPerBlock = 64;

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

    /// <summary>Every block of <see cref="RowsPerBlock"/> rows in order, their loss totals added
    /// in that order, then the operation's finish.</summary>
    private static void RunBlocks<TOperation, T, TVec>(in Prepared<TOperation> prepared)
        where TOperation : struct, IRowOperation<TOperation, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TVec : struct, IVec<TVec, T>
    {
        long rows = prepared.Operation.Rows;
        double total = 0;
        for (long first = 0; first < rows; first += RowsPerBlock)
        {
            total += TOperation.Run<TVec>(in prepared, first, Math.Min(rows, first + RowsPerBlock));
        }
        TOperation.Finish(in prepared, total);
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
