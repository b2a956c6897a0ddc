using System.Diagnostics.CodeAnalysis;
using NativeSoftmax.Kernels;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Operations;

/// <summary>
/// A row-to-row operation (<see cref="RowToRowOperation{TKernel, T}"/>) on 16-bit storage
/// <typeparamref name="TFormat"/>, computed in float32: each block of rows is widened into this
/// thread's <see cref="ThreadScratch"/>, the float32 operation runs on it in place, and each result
/// is narrowed once (nearest, ties to even, then the flush rule) into the caller's memory. The
/// kernels are the float32 ones, unchanged.
/// </summary>
internal readonly unsafe struct HalfRowToRowOperation<TKernel, TFormat>(long rows, long cols,
    ushort* input, long ldInput, ushort* secondInput, long ldSecondInput, ushort* output, long ldOutput)
    : IRowOperation<HalfRowToRowOperation<TKernel, TFormat>, float>
    where TKernel : struct, IRowKernel
    where TFormat : struct, IHalfFormat
{
    /// <summary>A kernel of one input (the forward passes).</summary>
    public HalfRowToRowOperation(long rows, long cols, ushort* input, long ldInput, ushort* output, long ldOutput)
        : this(rows, cols, input, ldInput, null, 0, output, ldOutput)
    {
    }

    public long Rows => rows;

    public long Cols => cols;

    /// <summary>The float operation's own checks over the 16-bit memory (they depend only on
    /// pointers and the element size, which <see cref="Half"/> gives).</summary>
    public bool Prepare(out Prepared<HalfRowToRowOperation<TKernel, TFormat>> prepared, [NotNullWhen(false)] out Failure? failure)
    {
        bool valid = new RowToRowOperation<TKernel, Half>(rows, cols, (Half*)input, ldInput, (Half*)secondInput, ldSecondInput,
            (Half*)output, ldOutput).Prepare(out _, out failure);
        prepared = valid ? new(this) : default;
        return valid;
    }

    public static double Run<TVec>(in Prepared<HalfRowToRowOperation<TKernel, TFormat>> prepared, long first, long end)
        where TVec : struct, IVec<TVec, float> =>
        prepared.Operation.RunBlock<TVec>(first, end);

    public static void Finish(in Prepared<HalfRowToRowOperation<TKernel, TFormat>> prepared, double total)
    {
    }

    /// <summary>A long row's float32 copy, or a block's widened inputs and the float32 operation's tiles.</summary>
    public static void ReserveScratch<TVec>(in Prepared<HalfRowToRowOperation<TKernel, TFormat>> prepared, long blockRows)
        where TVec : struct, IVec<TVec, float>
    {
        long cols = prepared.Operation.Cols;
        if (ByChunks<TVec>(cols))
        {
            ThreadScratch.Block(cols);
            return;
        }
        ThreadScratch.Block(BlockFloats(blockRows * cols));
        RowToRowOperation<TKernel, float>.ReserveTiles<TVec>(cols, blockRows);
    }

    /// <summary>Whether rows of <paramref name="cols"/> go by <see cref="IRowKernel.HalfLongRow"/>.</summary>
    private static bool ByChunks<TVec>(long cols)
        where TVec : struct, IVec<TVec, float> =>
        TKernel.ConvertsLongRowsByChunks && LongRow<TVec, float>.Fits((nuint)cols);

    /// <summary>The floats a block of <paramref name="elements"/> widens into: one copy per input.</summary>
    private static long BlockFloats(long elements) => TKernel.SecondInput is not null ? 2 * elements : elements;

    private double RunBlock<TVec>(long first, long end)
        where TVec : struct, IVec<TVec, float>
    {
        nuint length = (nuint)cols;
        if (ByChunks<TVec>(cols))
        {
            float* scratch = ThreadScratch.Block(cols);
            for (long r = first; r < end; r++)
            {
                var half = new LongRow<TVec, float>.HalfStorage(input + r * ldInput, output + r * ldOutput,
                    &HalfConversion<TFormat>.WidenAt<TVec>, &HalfConversion<TFormat>.NarrowFlushedAt<TVec>,
                    &HalfConversion<TFormat>.StoreNarrowedAt<TVec, ScaledExps<TVec, float>>,
                    &HalfConversion<TFormat>.StoreNarrowedAt<TVec, LogSoftmaxOf<TVec, float>>);
                TKernel.HalfLongRow<TVec>(half, scratch, length);
            }
            return 0.0;
        }
        long count = end - first;
        long block = count * cols;
        bool twoInputs = TKernel.SecondInput is not null;
        float* a = ThreadScratch.Block(BlockFloats(block));
        float* b = twoInputs ? a + block : null;
        nuint n = (nuint)cols;
        for (long r = first; r < end; r++)
        {
            HalfConversion<TFormat>.WidenAt<TVec>(input + r * ldInput, a + (r - first) * cols, n);
            if (twoInputs)
            {
                HalfConversion<TFormat>.WidenAt<TVec>(secondInput + r * ldSecondInput, b + (r - first) * cols, n);
            }
        }
        // The whole block is widened before anything is written, so the caller's output may be
        // exactly an input; the float32 result goes over the first input's scratch (allowed).
        var inner = new RowToRowOperation<TKernel, float>(count, cols, a, cols, b, cols, a, cols);
        if (!inner.Prepare(out Prepared<RowToRowOperation<TKernel, float>> ready, out Failure? failure))
        {
            throw new InvalidOperationException(failure.Message);
        }
        RowToRowOperation<TKernel, float>.Run<TVec>(in ready, 0, count);
        for (long r = first; r < end; r++)
        {
            HalfConversion<TFormat>.NarrowFlushedAt<TVec>(a + (r - first) * cols, output + r * ldOutput, n);
        }
        return 0.0;
    }
}
