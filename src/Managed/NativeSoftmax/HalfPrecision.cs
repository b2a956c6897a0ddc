using System.Numerics;
using NativeSoftmax.Kernels;
using NativeSoftmax.Operations;
using NativeSoftmax.Simd;

namespace NativeSoftmax;

/// <summary>
/// <see cref="Half"/> and <see cref="BFloat16"/>: the half-precision operations that the C ABI's
/// _f16 and _bf16 functions run (src/Managed/NativeSoftmax/Operations/Half*.cs): storage in 16
/// bits, each block of rows widened into per-thread float32 scratch, computed by the float32
/// kernels, and each result rounded once to the nearest 16-bit value (ties to even), a result
/// below the type's smallest normal number stored as 0. Nothing is allocated per call.
/// </summary>
public static partial class SoftmaxPrimitives
{
    private static unsafe void HalfRowToRow<TKernel>(long rows, long cols, Half* input, long ldInput,
        Half* secondInput, long ldSecondInput, Half* output, long ldOutput)
        where TKernel : struct, IRowKernel =>
        Execute<HalfRowToRowOperation<TKernel, Float16Format>, float>(
            new(rows, cols, (ushort*)input, ldInput, (ushort*)secondInput, ldSecondInput, (ushort*)output, ldOutput));

    private static unsafe void HalfJacobian(long cols, Half* logits, Half* jacobian, long ldJacobian) =>
        Execute<HalfJacobianOperation<Float16Format>, float>(new(cols, (ushort*)logits, (ushort*)jacobian, ldJacobian));

    /// <summary>
    /// The Half cross-entropy, whose weight, per-row upstream gradients and loss are Half in this
    /// API (float32 in the C ABI): every argument is checked as Half first (so nothing is written
    /// on failure), then the weight and upstream gradients are widened into this thread's call
    /// scratch, the loss computed there in float32 and rounded once to Half.
    /// </summary>
    private static unsafe void HalfHardLabels<TLabel>(long rows, long cols, Half* logits, long ldLogits, TLabel* target,
        Half* weight, Half* gradOutput, Half* loss, Half* grad, long ldGrad, CrossEntropyOptions options)
        where TLabel : unmanaged, IBinaryInteger<TLabel>, ISignedNumber<TLabel>
    {
        Validate<HardLabelCrossEntropyOperation<Half, TLabel, LossOptions>, Half>(
            new(rows, cols, logits, ldLogits, target, weight, options.ToLossOptions(gradOutput), loss, grad, ldGrad));
        var scratch = new LossVectors(rows, cols, weight, gradOutput, loss, options.Reduction);
        Execute<HalfHardLabelCrossEntropyOperation<Float16Format, TLabel, LossOptions>, float>(
            new(rows, cols, (ushort*)logits, ldLogits, target, scratch.Weight, options.ToLossOptions(scratch.GradOutput),
                scratch.Loss, (ushort*)grad, ldGrad));
        scratch.NarrowLoss(loss);
    }

    private static unsafe void HalfSoftTargets(long rows, long cols, Half* logits, long ldLogits, Half* target, long ldTarget,
        Half* weight, Half* gradOutput, Half* loss, Half* grad, long ldGrad, CrossEntropyOptions options)
    {
        Validate<SoftTargetCrossEntropyOperation<Half, LossOptions>, Half>(
            new(rows, cols, logits, ldLogits, target, ldTarget, weight, options.ToLossOptions(gradOutput), loss, grad, ldGrad));
        var scratch = new LossVectors(rows, cols, weight, gradOutput, loss, options.Reduction);
        Execute<HalfSoftTargetCrossEntropyOperation<Float16Format, LossOptions>, float>(
            new(rows, cols, (ushort*)logits, ldLogits, (ushort*)target, ldTarget, scratch.Weight,
                options.ToLossOptions(scratch.GradOutput), scratch.Loss, (ushort*)grad, ldGrad));
        scratch.NarrowLoss(loss);
    }

    /// <summary>The float32 weight, upstream gradients and loss of a Half cross-entropy call, in
    /// this thread's <see cref="ThreadScratch.Call"/>; null where the caller gave none.</summary>
    private readonly unsafe struct LossVectors
    {
        public readonly float* Weight;
        public readonly float* GradOutput;
        public readonly float* Loss;
        private readonly long _lossCount;

        public LossVectors(long rows, long cols, Half* weight, Half* gradOutput, Half* loss, Reduction reduction)
        {
            _lossCount = reduction == Reduction.None ? rows : 1;
            long weightCount = weight == null ? 0 : cols, gradOutputCount = gradOutput == null ? 0 : rows;
            float* start = ThreadScratch.Call(weightCount + gradOutputCount + _lossCount);
            Weight = weight == null ? null : start;
            GradOutput = gradOutput == null ? null : start + weightCount;
            Loss = loss == null ? null : start + weightCount + gradOutputCount;
            if (weight != null)
            {
                HalfConversion<Float16Format>.Widen<Words128>((ushort*)weight, Weight, (nuint)cols);
            }
            if (gradOutput != null)
            {
                HalfConversion<Float16Format>.Widen<Words128>((ushort*)gradOutput, GradOutput, (nuint)rows);
            }
        }

        public void NarrowLoss(Half* loss)
        {
            if (loss != null)
            {
                HalfConversion<Float16Format>.NarrowFlushed<Words128>(Loss, (ushort*)loss, (nuint)_lossCount);
            }
        }
    }

    /// <summary>Prepares an operation only to check its arguments; throws what it would.</summary>
    private static void Validate<TOperation, T>(TOperation operation)
        where TOperation : struct, IRowOperation<TOperation, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (!operation.Prepare(out _, out Failure? failure))
        {
            throw failure.ToException();
        }
    }

    // ---- bfloat16 ------------------------------------------------------------------------------
    // BFloat16 is not an IBinaryFloatingPointIeee754 (.NET 10 has no bfloat16 type of its own), so
    // it has overloads of its own; they take and give what the C ABI's _bf16 functions do (float32
    // weight and loss).

    /// <summary>Softmax of every row, bfloat16 in and out, computed in float32; see
    /// <see cref="Softmax{T}(int, int, ReadOnlySpan{T}, int, Span{T}, int)"/>. Each probability is
    /// within 1e-6 relative plus one bfloat16 ulp of the exact value.</summary>
    public static void Softmax(int rows, int cols, ReadOnlySpan<BFloat16> logits, int ldLogits,
        Span<BFloat16> probabilities, int ldProbabilities) =>
        BFloat16RowToRow<SoftmaxRow>(rows, cols, logits, ldLogits, default, 0, probabilities, ldProbabilities);

    /// <summary>log_softmax of every row, bfloat16 in and out, computed in float32; see
    /// <see cref="LogSoftmax{T}(int, int, ReadOnlySpan{T}, int, Span{T}, int)"/>.</summary>
    public static void LogSoftmax(int rows, int cols, ReadOnlySpan<BFloat16> logits, int ldLogits,
        Span<BFloat16> logProbabilities, int ldLogProbabilities) =>
        BFloat16RowToRow<LogSoftmaxRow>(rows, cols, logits, ldLogits, default, 0, logProbabilities, ldLogProbabilities);

    /// <summary>The softmax vector–Jacobian product in bfloat16, computed in float32; see
    /// <see cref="SoftmaxBackward{T}(int, int, ReadOnlySpan{T}, int, ReadOnlySpan{T}, int, Span{T}, int)"/>.</summary>
    public static void SoftmaxBackward(int rows, int cols, ReadOnlySpan<BFloat16> gradOutput, int ldGradOutput,
        ReadOnlySpan<BFloat16> output, int ldOutput, Span<BFloat16> gradLogits, int ldGradLogits) =>
        BFloat16RowToRow<SoftmaxBackwardRow>(rows, cols, gradOutput, ldGradOutput, output, ldOutput, gradLogits, ldGradLogits);

    /// <summary>The log_softmax vector–Jacobian product in bfloat16, computed in float32; see
    /// <see cref="LogSoftmaxBackward{T}(int, int, ReadOnlySpan{T}, int, ReadOnlySpan{T}, int, Span{T}, int)"/>.</summary>
    public static void LogSoftmaxBackward(int rows, int cols, ReadOnlySpan<BFloat16> gradOutput, int ldGradOutput,
        ReadOnlySpan<BFloat16> output, int ldOutput, Span<BFloat16> gradLogits, int ldGradLogits) =>
        BFloat16RowToRow<LogSoftmaxBackwardRow>(rows, cols, gradOutput, ldGradOutput, output, ldOutput, gradLogits, ldGradLogits);

    /// <summary>The softmax Jacobian of one bfloat16 row, computed in float32; see
    /// <see cref="SoftmaxJacobian{T}(ReadOnlySpan{T}, Span{T}, int)"/>.</summary>
    public static unsafe void SoftmaxJacobian(ReadOnlySpan<BFloat16> logits, Span<BFloat16> jacobian, int ldJacobian)
    {
        RequireRow(logits, int.MaxValue, nameof(jacobian));
        RequireLength(jacobian.Length, logits.Length, logits.Length, ldJacobian, "jacobian");
        fixed (BFloat16* z = logits)
        fixed (BFloat16* j = jacobian)
        {
            Execute<HalfJacobianOperation<BFloat16Format>, float>(new(logits.Length, (ushort*)z, (ushort*)j, ldJacobian));
        }
    }

    /// <summary>
    /// Fused softmax cross-entropy with hard labels over bfloat16 logits: the gradient in bfloat16,
    /// the weight and loss in float32 (as nsm_cross_entropy_bf16). Otherwise as
    /// <see cref="CrossEntropy{T}(int, int, ReadOnlySpan{T}, int, ReadOnlySpan{long}, ReadOnlySpan{T}, Span{T}, Span{T}, int, CrossEntropyOptions?)"/>.
    /// </summary>
    public static unsafe void CrossEntropy(int rows, int cols, ReadOnlySpan<BFloat16> logits, int ldLogits,
        ReadOnlySpan<long> target, ReadOnlySpan<float> weight, Span<float> loss, Span<BFloat16> grad, int ldGrad,
        CrossEntropyOptions? options = null)
    {
        options ??= CrossEntropyOptions.Default;
        RequireLength(logits.Length, rows, cols, ldLogits, "logits");
        RequireCounts(target.Length, rows, weight.Length, cols, 0, loss.Length, grad.Length, options);
        if (!grad.IsEmpty)
        {
            RequireLength(grad.Length, rows, cols, ldGrad, "grad");
        }
        fixed (BFloat16* z = logits)
        fixed (long* t = target)
        fixed (float* w = weight)
        fixed (float* l = loss)
        fixed (BFloat16* g = grad)
        {
            Execute<HalfHardLabelCrossEntropyOperation<BFloat16Format, long, LossOptions>, float>(
                new(rows, cols, (ushort*)z, ldLogits, t, w, options.ToLossOptions(), l, (ushort*)g, ldGrad));
        }
    }

    /// <summary>
    /// Fused softmax cross-entropy with soft targets over bfloat16 logits and targets: the gradient
    /// in bfloat16, the weight and loss in float32 (as nsm_cross_entropy_soft_bf16). Otherwise as
    /// <see cref="CrossEntropy{T}(int, int, ReadOnlySpan{T}, int, ReadOnlySpan{T}, int, ReadOnlySpan{T}, Span{T}, Span{T}, int, CrossEntropyOptions?)"/>.
    /// </summary>
    public static unsafe void CrossEntropy(int rows, int cols, ReadOnlySpan<BFloat16> logits, int ldLogits,
        ReadOnlySpan<BFloat16> target, int ldTarget, ReadOnlySpan<float> weight, Span<float> loss, Span<BFloat16> grad, int ldGrad,
        CrossEntropyOptions? options = null)
    {
        options ??= CrossEntropyOptions.Default;
        RequireLength(logits.Length, rows, cols, ldLogits, "logits");
        RequireLength(target.Length, rows, cols, ldTarget, "target");
        RequireCounts(rows, rows, weight.Length, cols, 0, loss.Length, grad.Length, options);
        if (!grad.IsEmpty)
        {
            RequireLength(grad.Length, rows, cols, ldGrad, "grad");
        }
        fixed (BFloat16* z = logits)
        fixed (BFloat16* p = target)
        fixed (float* w = weight)
        fixed (float* l = loss)
        fixed (BFloat16* g = grad)
        {
            Execute<HalfSoftTargetCrossEntropyOperation<BFloat16Format, LossOptions>, float>(
                new(rows, cols, (ushort*)z, ldLogits, (ushort*)p, ldTarget, w, options.ToLossOptions(), l, (ushort*)g, ldGrad));
        }
    }

    private static unsafe void BFloat16RowToRow<TKernel>(int rows, int cols, ReadOnlySpan<BFloat16> input, int ldInput,
        ReadOnlySpan<BFloat16> secondInput, int ldSecondInput, Span<BFloat16> output, int ldOutput)
        where TKernel : struct, IRowKernel
    {
        RequireLength(input.Length, rows, cols, ldInput, TKernel.Input.Name);
        if (TKernel.SecondInput is { } second)
        {
            RequireLength(secondInput.Length, rows, cols, ldSecondInput, second.Name);
        }
        RequireLength(output.Length, rows, cols, ldOutput, TKernel.Output.Name);
        fixed (BFloat16* a = input)
        fixed (BFloat16* b = secondInput)
        fixed (BFloat16* o = output)
        {
            Execute<HalfRowToRowOperation<TKernel, BFloat16Format>, float>(
                new(rows, cols, (ushort*)a, ldInput, (ushort*)b, ldSecondInput, (ushort*)o, ldOutput));
        }
    }
}
