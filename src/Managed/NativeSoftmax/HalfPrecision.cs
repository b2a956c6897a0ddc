using System.Buffers;
using System.Numerics;
using NativeSoftmax.Kernels;
using NativeSoftmax.Operations;

namespace NativeSoftmax;

/// <summary>
/// <see cref="Half"/> through float: every method validates the Half arguments as the float path
/// would (the operation's own Prepare over the Half memory: shapes, pointers, overlaps, labels,
/// options), widens the inputs into dense float scratch (exact), runs the float operation, and
/// rounds each result to Half once. The scratch comes from <see cref="ArrayPool{T}.Shared"/>, so a
/// call allocates nothing once the pool holds arrays of its size.
/// </summary>
public static partial class SoftmaxPrimitives
{
    private static unsafe void HalfRowToRow<TKernel>(long rows, long cols, Half* input, long ldInput,
        Half* secondInput, long ldSecondInput, Half* output, long ldOutput)
        where TKernel : struct, IRowKernel
    {
        Validate<RowToRowOperation<TKernel, Half>, Half>(new(rows, cols, input, ldInput, secondInput, ldSecondInput, output, ldOutput));
        long count = rows * cols;
        float[] a = RentFloats(count), b = RentFloats(TKernel.SecondInput is null ? 0 : count), o = RentFloats(count);
        try
        {
            fixed (float* af = a)
            fixed (float* bf = b)
            fixed (float* of = o)
            {
                Widen(input, rows, cols, ldInput, af);
                if (TKernel.SecondInput is not null)
                {
                    Widen(secondInput, rows, cols, ldSecondInput, bf);
                }
                Execute<RowToRowOperation<TKernel, float>, float>(new(rows, cols, af, cols, bf, cols, of, cols));
                Narrow(of, rows, cols, output, ldOutput);
            }
        }
        finally
        {
            ReturnFloats(a, b, o);
        }
    }

    private static unsafe void HalfJacobian(long cols, Half* logits, Half* jacobian, long ldJacobian)
    {
        Validate<SoftmaxJacobianOperation<Half>, Half>(new(cols, logits, jacobian, ldJacobian));
        float[] z = RentFloats(cols), j = RentFloats(cols * cols);
        try
        {
            fixed (float* zf = z)
            fixed (float* jf = j)
            {
                Widen(logits, 1, cols, cols, zf);
                Execute<SoftmaxJacobianOperation<float>, float>(new(cols, zf, jf, cols));
                Narrow(jf, cols, cols, jacobian, ldJacobian);
            }
        }
        finally
        {
            ReturnFloats(z, j);
        }
    }

    private static unsafe void HalfHardLabels<TLabel>(long rows, long cols, Half* logits, long ldLogits, TLabel* target,
        Half* weight, Half* gradOutput, Half* loss, Half* grad, long ldGrad, CrossEntropyOptions options)
        where TLabel : unmanaged, IBinaryInteger<TLabel>, ISignedNumber<TLabel>
    {
        Validate<HardLabelCrossEntropyOperation<Half, TLabel, LossOptions>, Half>(
            new(rows, cols, logits, ldLogits, target, weight, options.ToLossOptions(gradOutput), loss, grad, ldGrad));
        var scratch = new LossScratch(rows, cols, weight, gradOutput, loss, grad, options.Reduction);
        try
        {
            fixed (float* z = scratch.Logits)
            fixed (float* w = scratch.Weight)
            fixed (float* u = scratch.GradOutput)
            fixed (float* l = scratch.Loss)
            fixed (float* g = scratch.Grad)
            {
                Widen(logits, rows, cols, ldLogits, z);
                scratch.WidenVectors(weight, w, gradOutput, u);
                Execute<HardLabelCrossEntropyOperation<float, TLabel, LossOptions>, float>(
                    new(rows, cols, z, cols, target, w, options.ToLossOptions(u), l, g, cols));
                scratch.NarrowOutputs(l, loss, g, grad, ldGrad);
            }
        }
        finally
        {
            scratch.Return();
        }
    }

    private static unsafe void HalfSoftTargets(long rows, long cols, Half* logits, long ldLogits, Half* target, long ldTarget,
        Half* weight, Half* gradOutput, Half* loss, Half* grad, long ldGrad, CrossEntropyOptions options)
    {
        Validate<SoftTargetCrossEntropyOperation<Half, LossOptions>, Half>(
            new(rows, cols, logits, ldLogits, target, ldTarget, weight, options.ToLossOptions(gradOutput), loss, grad, ldGrad));
        var scratch = new LossScratch(rows, cols, weight, gradOutput, loss, grad, options.Reduction);
        float[] p = RentFloats(rows * cols);
        try
        {
            fixed (float* z = scratch.Logits)
            fixed (float* pf = p)
            fixed (float* w = scratch.Weight)
            fixed (float* u = scratch.GradOutput)
            fixed (float* l = scratch.Loss)
            fixed (float* g = scratch.Grad)
            {
                Widen(logits, rows, cols, ldLogits, z);
                Widen(target, rows, cols, ldTarget, pf);
                scratch.WidenVectors(weight, w, gradOutput, u);
                Execute<SoftTargetCrossEntropyOperation<float, LossOptions>, float>(
                    new(rows, cols, z, cols, pf, cols, w, options.ToLossOptions(u), l, g, cols));
                scratch.NarrowOutputs(l, loss, g, grad, ldGrad);
            }
        }
        finally
        {
            ReturnFloats(p);
            scratch.Return();
        }
    }

    /// <summary>The float buffers of a cross-entropy call: an input or output the caller did not
    /// give (null) gets an empty array, whose fixed pointer is null, so the float operation sees
    /// the same choice.</summary>
    private readonly unsafe struct LossScratch(long rows, long cols, Half* weight, Half* gradOutput, Half* loss, Half* grad,
        Reduction reduction)
    {
        public readonly float[] Logits = RentFloats(rows * cols);
        public readonly float[] Weight = RentFloats(weight == null ? 0 : cols);
        public readonly float[] GradOutput = RentFloats(gradOutput == null ? 0 : rows);
        public readonly float[] Loss = RentFloats(loss == null ? 0 : LossCount(rows, reduction));
        public readonly float[] Grad = RentFloats(grad == null ? 0 : rows * cols);

        /// <summary>[rows] losses for reduction none, else one; at least one element so that a
        /// reduced loss over no rows is still written.</summary>
        private static long LossCount(long rows, Reduction reduction) => reduction == Reduction.None ? rows : 1;

        public void WidenVectors(Half* weightIn, float* weightOut, Half* gradOutputIn, float* gradOutputOut)
        {
            if (weightIn != null)
            {
                Widen(weightIn, 1, cols, cols, weightOut);
            }
            if (gradOutputIn != null && rows > 0)
            {
                Widen(gradOutputIn, 1, rows, rows, gradOutputOut);
            }
        }

        public void NarrowOutputs(float* lossIn, Half* lossOut, float* gradIn, Half* gradOut, long ldGrad)
        {
            if (lossOut != null)
            {
                long count = LossCount(rows, reduction);
                Narrow(lossIn, count == 0 ? 0 : 1, count, lossOut, count);
            }
            if (gradOut != null)
            {
                Narrow(gradIn, rows, cols, gradOut, ldGrad);
            }
        }

        public void Return() => ReturnFloats(Logits, Weight, GradOutput, Loss, Grad);
    }

    /// <summary>Prepares the Half operation only to check its arguments; throws what the float path would.</summary>
    private static void Validate<TOperation, T>(TOperation operation)
        where TOperation : struct, IRowOperation<TOperation, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (!operation.Prepare(out _, out Failure? failure))
        {
            throw failure.Value.ToException();
        }
    }

    /// <summary>A [rows × cols] Half matrix (leading dimension ld) into dense float, exactly.</summary>
    private static unsafe void Widen(Half* source, long rows, long cols, long ld, float* dense)
    {
        for (long r = 0; r < rows; r++)
        {
            Half* row = source + r * ld;
            float* to = dense + r * cols;
            for (long c = 0; c < cols; c++)
            {
                to[c] = (float)row[c];
            }
        }
    }

    /// <summary>Dense float results into a Half matrix (leading dimension ld), each rounded once to
    /// the nearest Half; only the rows × cols elements are written.</summary>
    private static unsafe void Narrow(float* dense, long rows, long cols, Half* destination, long ld)
    {
        for (long r = 0; r < rows; r++)
        {
            float* from = dense + r * cols;
            Half* row = destination + r * ld;
            for (long c = 0; c < cols; c++)
            {
                row[c] = (Half)from[c];
            }
        }
    }

    private static float[] RentFloats(long count) => count == 0 ? [] : ArrayPool<float>.Shared.Rent(checked((int)count));

    private static void ReturnFloats(params ReadOnlySpan<float[]> arrays)
    {
        foreach (float[] array in arrays)
        {
            if (array.Length > 0)
            {
                ArrayPool<float>.Shared.Return(array);
            }
        }
    }
}
