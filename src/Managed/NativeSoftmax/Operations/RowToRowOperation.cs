using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.CompilerServices;
using NativeSoftmax.Kernels;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Operations;

/// <summary>
/// A row-to-row operation (softmax, log_softmax and their backward passes): the kernel
/// <typeparamref name="TKernel"/> on every row, from one or two input matrices to an output matrix
/// that may be exactly either input.
/// </summary>
internal readonly unsafe struct RowToRowOperation<TKernel, T>(long rows, long cols,
    T* input, long ldInput, T* secondInput, long ldSecondInput, T* output, long ldOutput)
    : IRowOperation<RowToRowOperation<TKernel, T>, T>
    where TKernel : struct, IRowKernel
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    /// <summary>A kernel of one input (the forward passes).</summary>
    public RowToRowOperation(long rows, long cols, T* input, long ldInput, T* output, long ldOutput)
        : this(rows, cols, input, ldInput, null, 0, output, ldOutput)
    {
    }

    public long Rows => rows;

    public long Cols => cols;

    public bool Prepare(out Prepared<RowToRowOperation<TKernel, T>> prepared, [NotNullWhen(false)] out Failure? failure)
    {
        var first = new MatrixArgument(input, ldInput, TKernel.Input);
        var written = new MatrixArgument(output, ldOutput, TKernel.Output);
        bool valid = TKernel.SecondInput is { } secondName
            ? ElementwiseValidation.Check(rows, cols, sizeof(T), [first, new MatrixArgument(secondInput, ldSecondInput, secondName)], written, out failure)
            : ElementwiseValidation.Check(rows, cols, sizeof(T), [first], written, out failure);
        prepared = valid ? new(this) : default;
        return valid;
    }

    public static double Run<TVec>(in Prepared<RowToRowOperation<TKernel, T>> prepared, long first, long end)
        where TVec : struct, IVec<TVec, T>
    {
        nuint n = (nuint)prepared.Operation.Cols;
        if (ShortRow<TVec, T>.Fits(n))
        {
            prepared.Operation.RunShortRows<TVec, ShortRow<TVec, T>>(first, end);
        }
        else if (TKernel.RunsAcrossLanes && LaneTile<TVec, T>.Fits(n))
        {
            prepared.Operation.RunShortRows<TVec, RowLoop<TVec, T>>(first, end);
        }
        else if (ChunkedRowLoop<TVec, T>.Fits(n))
        {
            prepared.Operation.RunRows<TVec, ChunkedRowLoop<TVec, T>>(first, end); // the backward passes; softmax and log_softmax go by LongRow
        }
        else
        {
            prepared.Operation.RunRows<TVec, RowLoop<TVec, T>>(first, end);
        }
        return 0.0;
    }

    public static void Finish(in Prepared<RowToRowOperation<TKernel, T>> prepared, double total)
    {
    }

    public static void ReserveScratch<TVec>(in Prepared<RowToRowOperation<TKernel, T>> prepared, long blockRows)
        where TVec : struct, IVec<TVec, T> =>
        ReserveTiles<TVec>(prepared.Operation.Cols, blockRows);

    /// <summary>The tiles <see cref="RunShortRows"/> takes for blocks of at most
    /// <paramref name="blockRows"/> rows of <paramref name="cols"/> elements (for the float32
    /// operation inside a 16-bit one too).</summary>
    internal static void ReserveTiles<TVec>(long cols, long blockRows)
        where TVec : struct, IVec<TVec, T>
    {
        if (TKernel.RunsAcrossLanes && blockRows >= TVec.Count && LaneTile<TVec, T>.Fits((nuint)cols))
        {
            ThreadScratch.Tiles<T>(TileElements<TVec>());
        }
    }

    /// <summary>The elements of this thread's tile scratch that a group of rows uses: one tile per input.</summary>
    private static int TileElements<TVec>()
        where TVec : struct, IVec<TVec, T> =>
        TKernel.SecondInput is null ? LaneTile<TVec, T>.MaxElements : 2 * LaneTile<TVec, T>.MaxElements;

    /// <summary>Rows of at most <see cref="LaneTile{TVec, T}.MaxColumns"/>: Count at a time across lanes
    /// (<see cref="LaneTile{TVec, T}"/>) where the kernel can, the rest of the block one at a time by
    /// <typeparamref name="TRestLoop"/>. Groups start at the block's first row, so they depend on the
    /// shape alone (blocks do, <see cref="Dispatch"/>), never on the thread count.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void RunShortRows<TVec, TRestLoop>(long first, long end)
        where TVec : struct, IVec<TVec, T>
        where TRestLoop : struct, IRowLoop<TVec, T>
    {
        long r = first;
        if (TKernel.RunsAcrossLanes && end - first >= TVec.Count)
        {
            nuint n = (nuint)cols;
            int width = TVec.Count;
            int size = LaneTile<TVec, T>.MaxElements;
            T* tile = ThreadScratch.Tiles<T>(TileElements<TVec>()); // not the stack (ThreadScratch)
            T* secondTile = TKernel.SecondInput is null ? null : tile + size;
            bool prefetch = rows * ldInput * sizeof(T) >= LaneTile<TVec, T>.PrefetchFromBytes;
            for (; end - r >= width; r += width)
            {
                if (prefetch && end - r >= 3 * width)
                {
                    LaneTile<TVec, T>.Prefetch(input + (r + 2 * width) * ldInput, ldInput, n);
                    if (secondTile != null)
                    {
                        LaneTile<TVec, T>.Prefetch(secondInput + (r + 2 * width) * ldSecondInput, ldSecondInput, n);
                    }
                }
                LaneTile<TVec, T>.FromRows(input + r * ldInput, ldInput, n, tile);
                if (secondTile != null)
                {
                    LaneTile<TVec, T>.FromRows(secondInput + r * ldSecondInput, ldSecondInput, n, secondTile);
                }
                TKernel.Lanes<TVec, T>(tile, secondTile, n);
                LaneTile<TVec, T>.ToRows(tile, n, output + r * ldOutput, ldOutput);
            }
        }
        RunRows<TVec, TRestLoop>(r, end);
    }

    [MethodImpl(MethodImplOptions.NoInlining)] // one compilation unit per kernel, width and loop type
    private void RunRows<TVec, TLoop>(long first, long end)
        where TVec : struct, IVec<TVec, T>
        where TLoop : struct, IRowLoop<TVec, T>
    {
        nuint n = (nuint)cols;
        nuint ahead = NextRowPrefetch.Distance<TVec, T, TLoop>(rows, cols, ldInput);
        for (long r = first; r < end; r++)
        {
            TKernel.Row<TVec, T, TLoop>(input + r * ldInput, secondInput + r * ldSecondInput, output + r * ldOutput, n, r + 1 < end ? ahead : 0);
        }
    }
}
