using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Operations;

/// <summary>
/// Fused softmax cross-entropy with hard labels (<see cref="HardLabelCrossEntropyOperation{T, TLabel, TOptions}"/>)
/// with 16-bit logits and grad (<typeparamref name="TFormat"/>) and float32 weight, loss and
/// grad_output. Prepare is the float32 operation's, over the caller's 16-bit matrices; each block
/// of rows has its logits widened into this thread's <see cref="ThreadScratch"/>, runs the float32
/// operation there (its gradient in place over the scratch logits, its losses straight into the
/// caller's float32 memory), and has its gradient narrowed once into the caller's grad.
/// </summary>
internal unsafe struct HalfHardLabelCrossEntropyOperation<TFormat, TLabel, TOptions>(long rows, long cols,
    ushort* logits, long ldLogits, TLabel* target, float* weight, TOptions optionsSource, float* loss, ushort* grad, long ldGrad)
    : IRowOperation<HalfHardLabelCrossEntropyOperation<TFormat, TLabel, TOptions>, float>
    where TFormat : struct, IHalfFormat
    where TLabel : unmanaged, IBinaryInteger<TLabel>, ISignedNumber<TLabel>
    where TOptions : struct, ILossOptionsSource
{
    // The float32 operation as its Prepare left it (logits and grad unbound: each block binds its scratch).
    private Prepared<HardLabelCrossEntropyOperation<float, TLabel, TOptions>> _float;

    public readonly long Rows => rows;

    public readonly long Cols => cols;

    public readonly bool Prepare(out Prepared<HalfHardLabelCrossEntropyOperation<TFormat, TLabel, TOptions>> prepared,
        [NotNullWhen(false)] out Failure? failure)
    {
        prepared = default;
        HalfHardLabelCrossEntropyOperation<TFormat, TLabel, TOptions> ready = this;
        var computed = new HardLabelCrossEntropyOperation<float, TLabel, TOptions>(rows, cols, null, cols, target, weight,
            optionsSource, loss, null, cols);
        if (!computed.PrepareStored(logits, ldLogits, grad, ldGrad, out ready._float, out failure))
        {
            return false;
        }
        prepared = new(ready);
        return true;
    }

    public static double Run<TVec>(in Prepared<HalfHardLabelCrossEntropyOperation<TFormat, TLabel, TOptions>> prepared, long first, long end)
        where TVec : struct, IVec<TVec, float> =>
        prepared.Operation.RunBlock<TVec>(first, end);

    public static void Finish(in Prepared<HalfHardLabelCrossEntropyOperation<TFormat, TLabel, TOptions>> prepared, double total) =>
        HardLabelCrossEntropyOperation<float, TLabel, TOptions>.Finish(in prepared.Operation._float, total);

    /// <summary>The block's widened logits, and the float32 operation's scratch.</summary>
    public static void ReserveScratch<TVec>(in Prepared<HalfHardLabelCrossEntropyOperation<TFormat, TLabel, TOptions>> prepared, long blockRows)
        where TVec : struct, IVec<TVec, float>
    {
        ThreadScratch.Block(blockRows * prepared.Operation.Cols);
        HardLabelCrossEntropyOperation<float, TLabel, TOptions>.ReserveScratch<TVec>(in prepared.Operation._float, blockRows);
    }

    private readonly double RunBlock<TVec>(long first, long end)
        where TVec : struct, IVec<TVec, float>
    {
        nuint n = (nuint)cols;
        float* scratch = ThreadScratch.Block((end - first) * cols);
        for (long r = first; r < end; r++)
        {
            HalfConversion<TFormat>.WidenAt<TVec>(logits + r * ldLogits, scratch + (r - first) * cols, n);
        }
        // Row r of the scratch matrix is at (r − first)·cols: the float32 operation indexes rows
        // from 0, so its matrices start first rows before the scratch (rows < first are never touched).
        float* rowZero = scratch - first * cols;
        var block = _float.Operation.Over(rowZero, cols, grad == null ? null : rowZero, cols);
        double total = HardLabelCrossEntropyOperation<float, TLabel, TOptions>.Run<TVec>(in block, first, end);
        if (grad != null)
        {
            for (long r = first; r < end; r++)
            {
                HalfConversion<TFormat>.NarrowFlushedAt<TVec>(scratch + (r - first) * cols, grad + r * ldGrad, n);
            }
        }
        return total;
    }
}
