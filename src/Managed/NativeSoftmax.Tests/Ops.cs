using System.Numerics;
using NativeSoftmax.Kernels;
using NativeSoftmax.Operations;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Tests;

/// <summary>
/// How a test reaches an operation: one of the four kernel widths through
/// <see cref="Dispatch.RunAtWidth{TOperation, T, TVec}"/> (a width the CPU lacks is emulated), or
/// the public API, which dispatches to the widest accelerated width.
/// </summary>
public enum Width
{
    Scalar,
    V128,
    V256,
    V512,
    PublicApi,
}

/// <summary>The theory data: every width with every element type.</summary>
public static class Cases
{
    public static readonly Width[] AllWidths = Enum.GetValues<Width>();
    public static readonly string[] Dtypes = ["float32", "float64"];

    public static TheoryData<Width> EveryWidth() => new(AllWidths);

    public static TheoryData<Width, string> WidthsAndTypes()
    {
        var data = new TheoryData<Width, string>();
        foreach (Width width in AllWidths)
        {
            foreach (string dtype in Dtypes)
            {
                data.Add(width, dtype);
            }
        }
        return data;
    }

    public static TheoryData<string> Types() => new(Dtypes);

    /// <summary>1…49 (3 × 16 float lanes + 1), a few around 64, and the workload sizes 1000 and 1001.</summary>
    public static readonly int[] Lengths = [.. Enumerable.Range(1, 49), 63, 64, 65, 1000, 1001];
}

/// <summary>Each operation, callable at a chosen <see cref="Width"/> on <see cref="Matrix{T}"/>s.</summary>
internal static unsafe class Ops
{
    public static void RunAt<TOperation, T>(Width width, TOperation operation)
        where TOperation : struct, IRowOperation<TOperation, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (!operation.Prepare(out Prepared<TOperation> prepared, out Failure? failure))
        {
            throw failure.ToException();
        }
        switch (width)
        {
            case Width.Scalar: Dispatch.RunAtWidth<TOperation, T, VecScalar<T>>(in prepared); break;
            case Width.V128: Dispatch.RunAtWidth<TOperation, T, Vec128<T>>(in prepared); break;
            case Width.V256: Dispatch.RunAtWidth<TOperation, T, Vec256<T>>(in prepared); break;
            case Width.V512: Dispatch.RunAtWidth<TOperation, T, Vec512<T>>(in prepared); break;
            default: throw new ArgumentOutOfRangeException(nameof(width), width, "the public API is called directly");
        }
    }

    public static void Softmax<T>(Width width, Matrix<T> logits, Matrix<T> output)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (width == Width.PublicApi)
        {
            SoftmaxPrimitives.Softmax<T>(logits.Rows, logits.Cols, logits.Span, logits.Ld, output.Span, output.Ld);
            return;
        }
        fixed (T* z = logits.Data)
        fixed (T* o = output.Data)
        {
            RunAt<RowToRowOperation<SoftmaxRow, T>, T>(width, new(logits.Rows, logits.Cols, z, logits.Ld, o, output.Ld));
        }
    }

    public static void LogSoftmax<T>(Width width, Matrix<T> logits, Matrix<T> output)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (width == Width.PublicApi)
        {
            SoftmaxPrimitives.LogSoftmax<T>(logits.Rows, logits.Cols, logits.Span, logits.Ld, output.Span, output.Ld);
            return;
        }
        fixed (T* z = logits.Data)
        fixed (T* y = output.Data)
        {
            RunAt<RowToRowOperation<LogSoftmaxRow, T>, T>(width, new(logits.Rows, logits.Cols, z, logits.Ld, y, output.Ld));
        }
    }

    public static void SoftmaxBackward<T>(Width width, Matrix<T> gradOutput, Matrix<T> output, Matrix<T> gradLogits)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (width == Width.PublicApi)
        {
            SoftmaxPrimitives.SoftmaxBackward<T>(gradOutput.Rows, gradOutput.Cols, gradOutput.Span, gradOutput.Ld,
                output.Span, output.Ld, gradLogits.Span, gradLogits.Ld);
            return;
        }
        fixed (T* g = gradOutput.Data)
        fixed (T* o = output.Data)
        fixed (T* dz = gradLogits.Data)
        {
            RunAt<RowToRowOperation<SoftmaxBackwardRow, T>, T>(width,
                new(gradOutput.Rows, gradOutput.Cols, g, gradOutput.Ld, o, output.Ld, dz, gradLogits.Ld));
        }
    }

    public static void LogSoftmaxBackward<T>(Width width, Matrix<T> gradOutput, Matrix<T> output, Matrix<T> gradLogits)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (width == Width.PublicApi)
        {
            SoftmaxPrimitives.LogSoftmaxBackward<T>(gradOutput.Rows, gradOutput.Cols, gradOutput.Span, gradOutput.Ld,
                output.Span, output.Ld, gradLogits.Span, gradLogits.Ld);
            return;
        }
        fixed (T* g = gradOutput.Data)
        fixed (T* y = output.Data)
        fixed (T* dz = gradLogits.Data)
        {
            RunAt<RowToRowOperation<LogSoftmaxBackwardRow, T>, T>(width,
                new(gradOutput.Rows, gradOutput.Cols, g, gradOutput.Ld, y, output.Ld, dz, gradLogits.Ld));
        }
    }

    public static void Jacobian<T>(Width width, T[] logits, Matrix<T> jacobian)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (width == Width.PublicApi)
        {
            SoftmaxPrimitives.SoftmaxJacobian<T>(logits, jacobian.Span, jacobian.Ld);
            return;
        }
        fixed (T* z = logits)
        fixed (T* j = jacobian.Data)
        {
            RunAt<SoftmaxJacobianOperation<T>, T>(width, new(logits.Length, z, j, jacobian.Ld));
        }
    }

    /// <summary>Hard-label cross-entropy; <paramref name="loss"/> and <paramref name="grad"/> may be null (not wanted),
    /// and so may <paramref name="gradOutput"/> (every row's upstream gradient is the grad scale).</summary>
    public static void CrossEntropy<T>(Width width, Matrix<T> logits, long[] target, T[]? weight,
        CrossEntropyOptions options, T[]? loss, Matrix<T>? grad, T[]? gradOutput = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (width == Width.PublicApi)
        {
            if (gradOutput is null)
            {
                SoftmaxPrimitives.CrossEntropy<T>(logits.Rows, logits.Cols, logits.Span, logits.Ld, target, weight,
                    loss, grad is null ? default : grad.Span, grad?.Ld ?? 0, options);
            }
            else
            {
                SoftmaxPrimitives.CrossEntropy<T>(logits.Rows, logits.Cols, logits.Span, logits.Ld, target, weight, gradOutput,
                    loss, grad is null ? default : grad.Span, grad?.Ld ?? 0, options);
            }
            return;
        }
        fixed (T* z = logits.Data)
        fixed (long* t = target)
        fixed (T* w = weight)
        fixed (T* u = gradOutput)
        fixed (T* l = loss)
        fixed (T* g = grad?.Data)
        {
            RunAt<HardLabelCrossEntropyOperation<T, long, LossOptions>, T>(width,
                new(logits.Rows, logits.Cols, z, logits.Ld, t, w, options.ToLossOptions(u), l, g, grad?.Ld ?? 0));
        }
    }

    /// <summary>Soft-target cross-entropy; <paramref name="loss"/> and <paramref name="grad"/> may be null (not wanted),
    /// and so may <paramref name="gradOutput"/>.</summary>
    public static void SoftCrossEntropy<T>(Width width, Matrix<T> logits, Matrix<T> target, T[]? weight,
        CrossEntropyOptions options, T[]? loss, Matrix<T>? grad, T[]? gradOutput = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (width == Width.PublicApi)
        {
            if (gradOutput is null)
            {
                SoftmaxPrimitives.CrossEntropy<T>(logits.Rows, logits.Cols, logits.Span, logits.Ld, target.Span, target.Ld,
                    weight, loss, grad is null ? default : grad.Span, grad?.Ld ?? 0, options);
            }
            else
            {
                SoftmaxPrimitives.CrossEntropy<T>(logits.Rows, logits.Cols, logits.Span, logits.Ld, target.Span, target.Ld,
                    weight, gradOutput, loss, grad is null ? default : grad.Span, grad?.Ld ?? 0, options);
            }
            return;
        }
        fixed (T* z = logits.Data)
        fixed (T* p = target.Data)
        fixed (T* w = weight)
        fixed (T* u = gradOutput)
        fixed (T* l = loss)
        fixed (T* g = grad?.Data)
        {
            RunAt<SoftTargetCrossEntropyOperation<T, LossOptions>, T>(width,
                new(logits.Rows, logits.Cols, z, logits.Ld, p, target.Ld, w, options.ToLossOptions(u), l, g, grad?.Ld ?? 0));
        }
    }
}
