using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using NativeSoftmax.Kernels;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Operations;

/// <summary>gradLogits = o ⊙ (g − ⟨g, o⟩) row by row: the softmax vector–Jacobian product.</summary>
internal readonly unsafe struct SoftmaxBackwardOperation<T>(long rows, long cols,
    T* gradOutput, long ldGradOutput, T* output, long ldOutput, T* gradLogits, long ldGradLogits)
    : IRowOperation<T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    public long Cols => cols;

    public bool Prepare([NotNullWhen(false)] out Failure? failure) =>
        ElementwiseValidation.Check(rows, cols, sizeof(T),
            [new MatrixArgument(gradOutput, ldGradOutput, "grad_output", "ld_grad_output"), new MatrixArgument(output, ldOutput, "output", "ld_output")],
            new MatrixArgument(gradLogits, ldGradLogits, "grad_logits", "ld_grad_logits"), out failure);

    public void Run<TVec>() where TVec : struct, IVec<TVec, T>
    {
        nuint n = (nuint)cols;
        for (long r = 0; r < rows; r++)
        {
            T* g = gradOutput + r * ldGradOutput;
            T* o = output + r * ldOutput;
            T dot = T.CreateTruncating(RowLoop<TVec, T>.Sum(new Products<TVec, T>(g, o), n));
            RowLoop<TVec, T>.Store(new SoftmaxVjp<TVec, T>(o, g, dot), gradLogits + r * ldGradLogits, n);
        }
    }
}

/// <summary>gradLogits = g − exp(logOutput)·Σg row by row: the log_softmax vector–Jacobian product.</summary>
internal readonly unsafe struct LogSoftmaxBackwardOperation<T>(long rows, long cols,
    T* gradOutput, long ldGradOutput, T* output, long ldOutput, T* gradLogits, long ldGradLogits)
    : IRowOperation<T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    public long Cols => cols;

    public bool Prepare([NotNullWhen(false)] out Failure? failure) =>
        ElementwiseValidation.Check(rows, cols, sizeof(T),
            [new MatrixArgument(gradOutput, ldGradOutput, "grad_output", "ld_grad_output"), new MatrixArgument(output, ldOutput, "output", "ld_output")],
            new MatrixArgument(gradLogits, ldGradLogits, "grad_logits", "ld_grad_logits"), out failure);

    public void Run<TVec>() where TVec : struct, IVec<TVec, T>
    {
        nuint n = (nuint)cols;
        for (long r = 0; r < rows; r++)
        {
            T* g = gradOutput + r * ldGradOutput;
            T gradSum = T.CreateTruncating(RowLoop<TVec, T>.Sum(new Elements<TVec, T>(g), n));
            RowLoop<TVec, T>.Store(new LogSoftmaxVjp<TVec, T>(output + r * ldOutput, g, gradSum), gradLogits + r * ldGradLogits, n);
        }
    }
}
