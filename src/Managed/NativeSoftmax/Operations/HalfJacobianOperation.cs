using System.Diagnostics.CodeAnalysis;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Operations;

/// <summary>
/// The softmax Jacobian (<see cref="SoftmaxJacobianOperation{T}"/>) on 16-bit storage
/// <typeparamref name="TFormat"/>: the logits widened into this thread's <see cref="ThreadScratch"/>,
/// the float32 Jacobian computed there, and each entry narrowed once into the caller's matrix.
/// The scratch holds cols·(cols + 1) floats; above <see cref="ThreadScratch.KeptBytes"/> it is given
/// back after the call.
/// </summary>
internal readonly unsafe struct HalfJacobianOperation<TFormat>(long cols, ushort* logits, ushort* jacobian, long ldJacobian)
    : IRowOperation<HalfJacobianOperation<TFormat>, float>
    where TFormat : struct, IHalfFormat
{
    public long Rows => 1;

    public long Cols => cols;

    public bool Prepare(out Prepared<HalfJacobianOperation<TFormat>> prepared, [NotNullWhen(false)] out Failure? failure)
    {
        bool valid = new SoftmaxJacobianOperation<Half>(cols, (Half*)logits, (Half*)jacobian, ldJacobian).Prepare(out _, out failure);
        prepared = valid ? new(this) : default;
        return valid;
    }

    public static double Run<TVec>(in Prepared<HalfJacobianOperation<TFormat>> prepared, long first, long end)
        where TVec : struct, IVec<TVec, float>
    {
        if (first < end)
        {
            prepared.Operation.Compute<TVec>();
        }
        return 0.0;
    }

    public static void Finish(in Prepared<HalfJacobianOperation<TFormat>> prepared, double total)
    {
    }

    public static void ReserveScratch<TVec>(in Prepared<HalfJacobianOperation<TFormat>> prepared, long blockRows)
        where TVec : struct, IVec<TVec, float> =>
        ThreadScratch.Block(prepared.Operation.ScratchFloats);

    /// <summary>The widened logits, then the float32 Jacobian.</summary>
    private long ScratchFloats => cols * (cols + 1);

    private void Compute<TVec>()
        where TVec : struct, IVec<TVec, float>
    {
        nuint n = (nuint)cols;
        float* z = ThreadScratch.Block(ScratchFloats);
        float* j = z + cols;
        HalfConversion<TFormat>.WidenAt<TVec>(logits, z, n);
        var inner = new SoftmaxJacobianOperation<float>(cols, z, j, cols);
        if (!inner.Prepare(out Prepared<SoftmaxJacobianOperation<float>> ready, out Failure? failure))
        {
            throw new InvalidOperationException(failure.Message);
        }
        SoftmaxJacobianOperation<float>.Run<TVec>(in ready, 0, 1);
        for (long i = 0; i < cols; i++)
        {
            HalfConversion<TFormat>.NarrowFlushedAt<TVec>(j + i * cols, jacobian + i * ldJacobian, n);
        }
        ThreadScratch.TrimBlock();
    }
}
