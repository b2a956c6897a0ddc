using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using NativeSoftmax.Kernels;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Operations;

/// <summary>probabilities = softmax(logits) row by row: max, then exp(z − max) stored and summed,
/// then scaled by 1/Σ.</summary>
internal readonly unsafe struct SoftmaxOperation<T>(long rows, long cols, T* logits, long ldLogits, T* probabilities, long ldProbabilities)
    : IRowOperation<T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    public long Cols => cols;

    public bool Prepare([NotNullWhen(false)] out Failure? failure) =>
        ElementwiseValidation.Check(rows, cols, sizeof(T),
            [new MatrixArgument(logits, ldLogits, "logits", "ld_logits")],
            new MatrixArgument(probabilities, ldProbabilities, "probabilities", "ld_probabilities"), out failure);

    public void Run<TVec>() where TVec : struct, IVec<TVec, T>
    {
        nuint n = (nuint)cols;
        if (ShortRow<TVec, T>.Fits(n))
        {
            for (long r = 0; r < rows; r++)
            {
                ShortRow<TVec, T>.Softmax(logits + r * ldLogits, probabilities + r * ldProbabilities, n);
            }
            return;
        }
        for (long r = 0; r < rows; r++)
        {
            T* z = logits + r * ldLogits;
            T* o = probabilities + r * ldProbabilities;
            T max = RowLoop<TVec, T>.Max(z, n);
            double sum = RowLoop<TVec, T>.StoreAndSum(new ExpShifted<TVec, T>(z, max), o, n);
            RowLoop<TVec, T>.Store(new Scaled<TVec, T>(o, T.CreateTruncating(1.0 / sum)), o, n);
        }
    }
}

/// <summary>logProbabilities = (z − max) − log Σ exp(z − max) row by row (never log(softmax)).</summary>
internal readonly unsafe struct LogSoftmaxOperation<T>(long rows, long cols, T* logits, long ldLogits, T* logProbabilities, long ldLogProbabilities)
    : IRowOperation<T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    public long Cols => cols;

    public bool Prepare([NotNullWhen(false)] out Failure? failure) =>
        ElementwiseValidation.Check(rows, cols, sizeof(T),
            [new MatrixArgument(logits, ldLogits, "logits", "ld_logits")],
            new MatrixArgument(logProbabilities, ldLogProbabilities, "log_probabilities", "ld_log_probabilities"), out failure);

    public void Run<TVec>() where TVec : struct, IVec<TVec, T>
    {
        nuint n = (nuint)cols;
        if (ShortRow<TVec, T>.Fits(n))
        {
            for (long r = 0; r < rows; r++)
            {
                ShortRow<TVec, T>.LogSoftmax(logits + r * ldLogits, logProbabilities + r * ldLogProbabilities, n);
            }
            return;
        }
        for (long r = 0; r < rows; r++)
        {
            T* z = logits + r * ldLogits;
            T max = RowLoop<TVec, T>.Max(z, n);
            T logSum = T.CreateTruncating(Math.Log(RowLoop<TVec, T>.Sum(new ExpShifted<TVec, T>(z, max), n)));
            RowLoop<TVec, T>.Store(new LogSoftmaxOf<TVec, T>(z, max, logSum), logProbabilities + r * ldLogProbabilities, n);
        }
    }
}
