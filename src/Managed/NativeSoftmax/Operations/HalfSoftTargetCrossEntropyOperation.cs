using System.Diagnostics.CodeAnalysis;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Operations;

/// <summary>
/// Fused softmax cross-entropy with soft targets (<see cref="SoftTargetCrossEntropyOperation{T, TOptions}"/>)
/// with 16-bit logits, target and grad (<typeparamref name="TFormat"/>) and float32 weight, loss
/// and grad_output: as <see cref="HalfHardLabelCrossEntropyOperation{TFormat, TLabel, TOptions}"/>,
/// with the targets widened beside the logits.
/// </summary>
internal unsafe struct HalfSoftTargetCrossEntropyOperation<TFormat, TOptions>(long rows, long cols,
    ushort* logits, long ldLogits, ushort* target, long ldTarget, float* weight, TOptions optionsSource, float* loss,
    ushort* grad, long ldGrad)
    : IRowOperation<HalfSoftTargetCrossEntropyOperation<TFormat, TOptions>, float>
    where TFormat : struct, IHalfFormat
    where TOptions : struct, ILossOptionsSource
{
    // The float32 operation as its Prepare left it (matrices unbound: each block binds its scratch).
    private Prepared<SoftTargetCrossEntropyOperation<float, TOptions>> _float;

    public readonly long Rows => rows;

    public readonly long Cols => cols;

    public readonly bool Prepare(out Prepared<HalfSoftTargetCrossEntropyOperation<TFormat, TOptions>> prepared,
        [NotNullWhen(false)] out Failure? failure)
    {
        prepared = default;
        HalfSoftTargetCrossEntropyOperation<TFormat, TOptions> ready = this;
        var computed = new SoftTargetCrossEntropyOperation<float, TOptions>(rows, cols, null, cols, null, cols, weight,
            optionsSource, loss, null, cols);
        if (!computed.PrepareStored(logits, ldLogits, target, ldTarget, grad, ldGrad, out ready._float, out failure))
        {
            return false;
        }
        prepared = new(ready);
        return true;
    }

    public static double Run<TVec>(in Prepared<HalfSoftTargetCrossEntropyOperation<TFormat, TOptions>> prepared, long first, long end)
        where TVec : struct, IVec<TVec, float> =>
        prepared.Operation.RunBlock<TVec>(first, end);

    public static void Finish(in Prepared<HalfSoftTargetCrossEntropyOperation<TFormat, TOptions>> prepared, double total) =>
        SoftTargetCrossEntropyOperation<float, TOptions>.Finish(in prepared.Operation._float, total);

    /// <summary>The block's widened logits and targets, and the float32 operation's scratch.</summary>
    public static void ReserveScratch<TVec>(in Prepared<HalfSoftTargetCrossEntropyOperation<TFormat, TOptions>> prepared, long blockRows)
        where TVec : struct, IVec<TVec, float>
    {
        ThreadScratch.Block(2 * blockRows * prepared.Operation.Cols);
        SoftTargetCrossEntropyOperation<float, TOptions>.ReserveScratch<TVec>(in prepared.Operation._float, blockRows);
    }

    private readonly double RunBlock<TVec>(long first, long end)
        where TVec : struct, IVec<TVec, float>
    {
        nuint n = (nuint)cols;
        long block = (end - first) * cols;
        float* z = ThreadScratch.Block(2 * block);
        float* p = z + block;
        for (long r = first; r < end; r++)
        {
            HalfConversion<TFormat>.WidenAt<TVec>(logits + r * ldLogits, z + (r - first) * cols, n);
            HalfConversion<TFormat>.WidenAt<TVec>(target + r * ldTarget, p + (r - first) * cols, n);
        }
        // As in the hard-label operation: the float32 matrices start first rows before the scratch.
        float* logitsRowZero = z - first * cols;
        var ready = _float.Operation.Over(logitsRowZero, cols, p - first * cols, cols, grad == null ? null : logitsRowZero, cols);
        double total = SoftTargetCrossEntropyOperation<float, TOptions>.Run<TVec>(in ready, first, end);
        if (grad != null)
        {
            for (long r = first; r < end; r++)
            {
                HalfConversion<TFormat>.NarrowFlushedAt<TVec>(z + (r - first) * cols, grad + r * ldGrad, n);
            }
        }
        return total;
    }
}
