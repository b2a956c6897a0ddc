using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.InteropServices;
using NativeSoftmax.Operations;
using NativeSoftmax.Threading;

namespace NativeSoftmax.Native;

/// <summary>
/// The C ABI of native/include/nativesoftmax.h. Each export is thin: it binds its arguments to an
/// operation, validates (a failure becomes a status code and the thread's last-error message) and
/// runs it. No exception escapes: one would abort the host process.
/// </summary>
internal static unsafe class Exports
{
    private static int Invoke<TOperation, T>(TOperation operation)
        where TOperation : struct, IRowOperation<TOperation, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        try
        {
            if (!operation.Prepare(out Prepared<TOperation> prepared, out Failure? failure))
            {
                return LastError.Set(failure);
            }
            Dispatch.Run<TOperation, T>(in prepared);
            return (int)Status.Ok;
        }
        catch (Exception exception)
        {
            return Unexpected(exception);
        }
    }

    /// <summary>The status and message of an exception that reached an export: out of memory, or
    /// a bug.</summary>
    private static int Unexpected(Exception exception) =>
        exception is OutOfMemoryException
            ? LastError.Set(Status.OutOfMemory, $"out of memory: {exception.Message}")
            : LastError.Set(Status.Internal, $"internal error ({exception.GetType().Name}): {exception.Message}");

    // ---- library information -----------------------------------------------------------------

    // nsm_status_string is not exported here: the dispatcher answers it (native/src/dispatch.c),
    // so there is one table of status texts (native/tests/dispatcher_only_functions.txt lists it).

    [UnmanagedCallersOnly(EntryPoint = "nsm_last_error")]
    public static byte* LastErrorMessage() => LastError.Message;

    [UnmanagedCallersOnly(EntryPoint = "nsm_version_number")]
    public static int Version() => HeaderVersion.Number;

    [UnmanagedCallersOnly(EntryPoint = "nsm_version_string")]
    public static byte* VersionString() => Text.Of(HeaderVersion.Utf8);

    [UnmanagedCallersOnly(EntryPoint = "nsm_isa")]
    public static byte* Isa() => Text.Of(IsaUtf8);

    /// <summary>Dispatch.Isa, computed once. A variant is compiled for its instruction set's
    /// baseline (and the dispatcher loads it only on a CPU that has it), so a path is always
    /// accelerated here; "none" is the header's word for no path, kept for completeness.</summary>
    private static readonly byte[] IsaUtf8 = Text.Pinned(Dispatch.Isa ?? "none");

    // ---- threads ------------------------------------------------------------------------------

    [UnmanagedCallersOnly(EntryPoint = "nsm_get_num_threads")]
    public static int GetNumThreads() => WorkerPool.ThreadCount;

    [UnmanagedCallersOnly(EntryPoint = "nsm_set_num_threads")]
    public static int SetNumThreads(int numThreads) =>
        WorkerPool.TrySetThreadCount(numThreads, out Failure? failure) ? (int)Status.Ok : LastError.Set(failure);

    // ---- softmax and log_softmax --------------------------------------------------------------

    [UnmanagedCallersOnly(EntryPoint = "nsm_softmax_f32")]
    public static int SoftmaxF32(long rows, long cols, float* logits, long ldLogits, float* probabilities, long ldProbabilities) =>
        Invoke<RowToRowOperation<Kernels.SoftmaxRow, float>, float>(new(rows, cols, logits, ldLogits, probabilities, ldProbabilities));

    [UnmanagedCallersOnly(EntryPoint = "nsm_softmax_f64")]
    public static int SoftmaxF64(long rows, long cols, double* logits, long ldLogits, double* probabilities, long ldProbabilities) =>
        Invoke<RowToRowOperation<Kernels.SoftmaxRow, double>, double>(new(rows, cols, logits, ldLogits, probabilities, ldProbabilities));

    [UnmanagedCallersOnly(EntryPoint = "nsm_log_softmax_f32")]
    public static int LogSoftmaxF32(long rows, long cols, float* logits, long ldLogits, float* logProbabilities, long ldLogProbabilities) =>
        Invoke<RowToRowOperation<Kernels.LogSoftmaxRow, float>, float>(new(rows, cols, logits, ldLogits, logProbabilities, ldLogProbabilities));

    [UnmanagedCallersOnly(EntryPoint = "nsm_log_softmax_f64")]
    public static int LogSoftmaxF64(long rows, long cols, double* logits, long ldLogits, double* logProbabilities, long ldLogProbabilities) =>
        Invoke<RowToRowOperation<Kernels.LogSoftmaxRow, double>, double>(new(rows, cols, logits, ldLogits, logProbabilities, ldLogProbabilities));

    // ---- backward passes ----------------------------------------------------------------------

    [UnmanagedCallersOnly(EntryPoint = "nsm_softmax_backward_f32")]
    public static int SoftmaxBackwardF32(long rows, long cols, float* gradOutput, long ldGradOutput,
        float* output, long ldOutput, float* gradLogits, long ldGradLogits) =>
        Invoke<RowToRowOperation<Kernels.SoftmaxBackwardRow, float>, float>(new(rows, cols, gradOutput, ldGradOutput, output, ldOutput, gradLogits, ldGradLogits));

    [UnmanagedCallersOnly(EntryPoint = "nsm_softmax_backward_f64")]
    public static int SoftmaxBackwardF64(long rows, long cols, double* gradOutput, long ldGradOutput,
        double* output, long ldOutput, double* gradLogits, long ldGradLogits) =>
        Invoke<RowToRowOperation<Kernels.SoftmaxBackwardRow, double>, double>(new(rows, cols, gradOutput, ldGradOutput, output, ldOutput, gradLogits, ldGradLogits));

    [UnmanagedCallersOnly(EntryPoint = "nsm_log_softmax_backward_f32")]
    public static int LogSoftmaxBackwardF32(long rows, long cols, float* gradOutput, long ldGradOutput,
        float* output, long ldOutput, float* gradLogits, long ldGradLogits) =>
        Invoke<RowToRowOperation<Kernels.LogSoftmaxBackwardRow, float>, float>(new(rows, cols, gradOutput, ldGradOutput, output, ldOutput, gradLogits, ldGradLogits));

    [UnmanagedCallersOnly(EntryPoint = "nsm_log_softmax_backward_f64")]
    public static int LogSoftmaxBackwardF64(long rows, long cols, double* gradOutput, long ldGradOutput,
        double* output, long ldOutput, double* gradLogits, long ldGradLogits) =>
        Invoke<RowToRowOperation<Kernels.LogSoftmaxBackwardRow, double>, double>(new(rows, cols, gradOutput, ldGradOutput, output, ldOutput, gradLogits, ldGradLogits));

    // ---- Jacobian -----------------------------------------------------------------------------

    [UnmanagedCallersOnly(EntryPoint = "nsm_softmax_jacobian_f32")]
    public static int SoftmaxJacobianF32(long cols, float* logits, float* jacobian, long ldJacobian) =>
        Invoke<SoftmaxJacobianOperation<float>, float>(new(cols, logits, jacobian, ldJacobian));

    [UnmanagedCallersOnly(EntryPoint = "nsm_softmax_jacobian_f64")]
    public static int SoftmaxJacobianF64(long cols, double* logits, double* jacobian, long ldJacobian) =>
        Invoke<SoftmaxJacobianOperation<double>, double>(new(cols, logits, jacobian, ldJacobian));

    // ---- cross-entropy ------------------------------------------------------------------------

    [UnmanagedCallersOnly(EntryPoint = "nsm_cross_entropy_f32")]
    public static int CrossEntropyF32(long rows, long cols, float* logits, long ldLogits, long* target, float* weight,
        CrossEntropyOptionsV2* options, float* loss, float* grad, long ldGrad) =>
        Invoke<HardLabelCrossEntropyOperation<float, long, CrossEntropyOptionsPointer>, float>(
            new(rows, cols, logits, ldLogits, target, weight, new(options), loss, grad, ldGrad));

    [UnmanagedCallersOnly(EntryPoint = "nsm_cross_entropy_f64")]
    public static int CrossEntropyF64(long rows, long cols, double* logits, long ldLogits, long* target, double* weight,
        CrossEntropyOptionsV2* options, double* loss, double* grad, long ldGrad) =>
        Invoke<HardLabelCrossEntropyOperation<double, long, CrossEntropyOptionsPointer>, double>(
            new(rows, cols, logits, ldLogits, target, weight, new(options), loss, grad, ldGrad));

    [UnmanagedCallersOnly(EntryPoint = "nsm_cross_entropy_soft_f32")]
    public static int CrossEntropySoftF32(long rows, long cols, float* logits, long ldLogits, float* target, long ldTarget,
        float* weight, CrossEntropyOptionsV2* options, float* loss, float* grad, long ldGrad) =>
        Invoke<SoftTargetCrossEntropyOperation<float, CrossEntropyOptionsPointer>, float>(
            new(rows, cols, logits, ldLogits, target, ldTarget, weight, new(options), loss, grad, ldGrad));

    [UnmanagedCallersOnly(EntryPoint = "nsm_cross_entropy_soft_f64")]
    public static int CrossEntropySoftF64(long rows, long cols, double* logits, long ldLogits, double* target, long ldTarget,
        double* weight, CrossEntropyOptionsV2* options, double* loss, double* grad, long ldGrad) =>
        Invoke<SoftTargetCrossEntropyOperation<double, CrossEntropyOptionsPointer>, double>(
            new(rows, cols, logits, ldLogits, target, ldTarget, weight, new(options), loss, grad, ldGrad));

    // ---- vocabulary-split cross-entropy (docs/derivation.md §7) -------------------------------

    [UnmanagedCallersOnly(EntryPoint = "nsm_cross_entropy_partial_f32")]
    public static int CrossEntropyPartialF32(long rows, long cols, long firstCol, long vocab, float* logits, long ldLogits,
        long* target, float* weight, CrossEntropyOptionsV2* options, CrossEntropyStats* stats) =>
        Invoke<CrossEntropyPartialOperation<float, CrossEntropyOptionsPointer>, float>(
            new(new(rows, cols, firstCol, vocab, logits, ldLogits, target, null, 0, weight), new(options), stats));

    [UnmanagedCallersOnly(EntryPoint = "nsm_cross_entropy_partial_f64")]
    public static int CrossEntropyPartialF64(long rows, long cols, long firstCol, long vocab, double* logits, long ldLogits,
        long* target, double* weight, CrossEntropyOptionsV2* options, CrossEntropyStats* stats) =>
        Invoke<CrossEntropyPartialOperation<double, CrossEntropyOptionsPointer>, double>(
            new(new(rows, cols, firstCol, vocab, logits, ldLogits, target, null, 0, weight), new(options), stats));

    [UnmanagedCallersOnly(EntryPoint = "nsm_cross_entropy_partial_soft_f32")]
    public static int CrossEntropyPartialSoftF32(long rows, long cols, long firstCol, long vocab, float* logits, long ldLogits,
        float* target, long ldTarget, float* weight, CrossEntropyOptionsV2* options, CrossEntropyStats* stats) =>
        Invoke<CrossEntropyPartialOperation<float, CrossEntropyOptionsPointer>, float>(
            new(new(rows, cols, firstCol, vocab, logits, ldLogits, null, target, ldTarget, weight) { SoftTargets = true }, new(options), stats));

    [UnmanagedCallersOnly(EntryPoint = "nsm_cross_entropy_partial_soft_f64")]
    public static int CrossEntropyPartialSoftF64(long rows, long cols, long firstCol, long vocab, double* logits, long ldLogits,
        double* target, long ldTarget, double* weight, CrossEntropyOptionsV2* options, CrossEntropyStats* stats) =>
        Invoke<CrossEntropyPartialOperation<double, CrossEntropyOptionsPointer>, double>(
            new(new(rows, cols, firstCol, vocab, logits, ldLogits, null, target, ldTarget, weight) { SoftTargets = true }, new(options), stats));

    [UnmanagedCallersOnly(EntryPoint = "nsm_cross_entropy_merge")]
    public static int CrossEntropyMerge(long rows, CrossEntropyStats* a, CrossEntropyStats* b, CrossEntropyStats* merged)
    {
        try
        {
            var operation = new CrossEntropyMergeOperation(rows, a, b, merged);
            if (!operation.Check(out Failure? failure))
            {
                return LastError.Set(failure);
            }
            operation.Run();
            return (int)Status.Ok;
        }
        catch (Exception exception)
        {
            return Unexpected(exception);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "nsm_cross_entropy_finish_f32")]
    public static int CrossEntropyFinishF32(long rows, long cols, long firstCol, long vocab, float* logits, long ldLogits,
        long* target, float* weight, CrossEntropyStats* stats, CrossEntropyOptionsV2* options, float* loss, float* grad, long ldGrad) =>
        Invoke<CrossEntropyFinishOperation<float, CrossEntropyOptionsPointer>, float>(
            new(new(rows, cols, firstCol, vocab, logits, ldLogits, target, null, 0, weight), stats, new(options), loss, grad, ldGrad));

    [UnmanagedCallersOnly(EntryPoint = "nsm_cross_entropy_finish_f64")]
    public static int CrossEntropyFinishF64(long rows, long cols, long firstCol, long vocab, double* logits, long ldLogits,
        long* target, double* weight, CrossEntropyStats* stats, CrossEntropyOptionsV2* options, double* loss, double* grad, long ldGrad) =>
        Invoke<CrossEntropyFinishOperation<double, CrossEntropyOptionsPointer>, double>(
            new(new(rows, cols, firstCol, vocab, logits, ldLogits, target, null, 0, weight), stats, new(options), loss, grad, ldGrad));

    [UnmanagedCallersOnly(EntryPoint = "nsm_cross_entropy_finish_soft_f32")]
    public static int CrossEntropyFinishSoftF32(long rows, long cols, long firstCol, long vocab, float* logits, long ldLogits,
        float* target, long ldTarget, float* weight, CrossEntropyStats* stats, CrossEntropyOptionsV2* options, float* loss, float* grad,
        long ldGrad) =>
        Invoke<CrossEntropyFinishOperation<float, CrossEntropyOptionsPointer>, float>(
            new(new(rows, cols, firstCol, vocab, logits, ldLogits, null, target, ldTarget, weight) { SoftTargets = true }, stats,
                new(options), loss, grad, ldGrad));

    [UnmanagedCallersOnly(EntryPoint = "nsm_cross_entropy_finish_soft_f64")]
    public static int CrossEntropyFinishSoftF64(long rows, long cols, long firstCol, long vocab, double* logits, long ldLogits,
        double* target, long ldTarget, double* weight, CrossEntropyStats* stats, CrossEntropyOptionsV2* options, double* loss, double* grad,
        long ldGrad) =>
        Invoke<CrossEntropyFinishOperation<double, CrossEntropyOptionsPointer>, double>(
            new(new(rows, cols, firstCol, vocab, logits, ldLogits, null, target, ldTarget, weight) { SoftTargets = true }, stats,
                new(options), loss, grad, ldGrad));

    // ---- half precision (bfloat16, float16) ---------------------------------------------------
    // 16-bit matrices (the header's nsm_bfloat16 and nsm_float16, one uint16_t each), read by the
    // operations as ushort*; weight, loss and grad_output float32.

    [UnmanagedCallersOnly(EntryPoint = "nsm_softmax_bf16")]
    public static int SoftmaxBF16(long rows, long cols, BFloat16Storage* logits, long ldLogits, BFloat16Storage* probabilities, long ldProbabilities) =>
        Invoke<HalfRowToRowOperation<Kernels.SoftmaxRow, Simd.BFloat16Format>, float>(new(rows, cols, (ushort*)logits, ldLogits, (ushort*)probabilities, ldProbabilities));

    [UnmanagedCallersOnly(EntryPoint = "nsm_log_softmax_bf16")]
    public static int LogSoftmaxBF16(long rows, long cols, BFloat16Storage* logits, long ldLogits, BFloat16Storage* logProbabilities, long ldLogProbabilities) =>
        Invoke<HalfRowToRowOperation<Kernels.LogSoftmaxRow, Simd.BFloat16Format>, float>(new(rows, cols, (ushort*)logits, ldLogits, (ushort*)logProbabilities, ldLogProbabilities));

    [UnmanagedCallersOnly(EntryPoint = "nsm_softmax_backward_bf16")]
    public static int SoftmaxBackwardBF16(long rows, long cols, BFloat16Storage* gradOutput, long ldGradOutput,
        BFloat16Storage* output, long ldOutput, BFloat16Storage* gradLogits, long ldGradLogits) =>
        Invoke<HalfRowToRowOperation<Kernels.SoftmaxBackwardRow, Simd.BFloat16Format>, float>(new(rows, cols, (ushort*)gradOutput, ldGradOutput, (ushort*)output, ldOutput, (ushort*)gradLogits, ldGradLogits));

    [UnmanagedCallersOnly(EntryPoint = "nsm_log_softmax_backward_bf16")]
    public static int LogSoftmaxBackwardBF16(long rows, long cols, BFloat16Storage* gradOutput, long ldGradOutput,
        BFloat16Storage* output, long ldOutput, BFloat16Storage* gradLogits, long ldGradLogits) =>
        Invoke<HalfRowToRowOperation<Kernels.LogSoftmaxBackwardRow, Simd.BFloat16Format>, float>(new(rows, cols, (ushort*)gradOutput, ldGradOutput, (ushort*)output, ldOutput, (ushort*)gradLogits, ldGradLogits));

    [UnmanagedCallersOnly(EntryPoint = "nsm_softmax_jacobian_bf16")]
    public static int SoftmaxJacobianBF16(long cols, BFloat16Storage* logits, BFloat16Storage* jacobian, long ldJacobian) =>
        Invoke<HalfJacobianOperation<Simd.BFloat16Format>, float>(new(cols, (ushort*)logits, (ushort*)jacobian, ldJacobian));

    [UnmanagedCallersOnly(EntryPoint = "nsm_cross_entropy_bf16")]
    public static int CrossEntropyBF16(long rows, long cols, BFloat16Storage* logits, long ldLogits, long* target, float* weight,
        CrossEntropyOptionsV2* options, float* loss, BFloat16Storage* grad, long ldGrad) =>
        Invoke<HalfHardLabelCrossEntropyOperation<Simd.BFloat16Format, long, CrossEntropyOptionsPointer>, float>(
            new(rows, cols, (ushort*)logits, ldLogits, target, weight, new(options), loss, (ushort*)grad, ldGrad));

    [UnmanagedCallersOnly(EntryPoint = "nsm_cross_entropy_soft_bf16")]
    public static int CrossEntropySoftBF16(long rows, long cols, BFloat16Storage* logits, long ldLogits, BFloat16Storage* target, long ldTarget,
        float* weight, CrossEntropyOptionsV2* options, float* loss, BFloat16Storage* grad, long ldGrad) =>
        Invoke<HalfSoftTargetCrossEntropyOperation<Simd.BFloat16Format, CrossEntropyOptionsPointer>, float>(
            new(rows, cols, (ushort*)logits, ldLogits, (ushort*)target, ldTarget, weight, new(options), loss, (ushort*)grad, ldGrad));

    [UnmanagedCallersOnly(EntryPoint = "nsm_softmax_f16")]
    public static int SoftmaxF16(long rows, long cols, Float16Storage* logits, long ldLogits, Float16Storage* probabilities, long ldProbabilities) =>
        Invoke<HalfRowToRowOperation<Kernels.SoftmaxRow, Simd.Float16Format>, float>(new(rows, cols, (ushort*)logits, ldLogits, (ushort*)probabilities, ldProbabilities));

    [UnmanagedCallersOnly(EntryPoint = "nsm_log_softmax_f16")]
    public static int LogSoftmaxF16(long rows, long cols, Float16Storage* logits, long ldLogits, Float16Storage* logProbabilities, long ldLogProbabilities) =>
        Invoke<HalfRowToRowOperation<Kernels.LogSoftmaxRow, Simd.Float16Format>, float>(new(rows, cols, (ushort*)logits, ldLogits, (ushort*)logProbabilities, ldLogProbabilities));

    [UnmanagedCallersOnly(EntryPoint = "nsm_softmax_backward_f16")]
    public static int SoftmaxBackwardF16(long rows, long cols, Float16Storage* gradOutput, long ldGradOutput,
        Float16Storage* output, long ldOutput, Float16Storage* gradLogits, long ldGradLogits) =>
        Invoke<HalfRowToRowOperation<Kernels.SoftmaxBackwardRow, Simd.Float16Format>, float>(new(rows, cols, (ushort*)gradOutput, ldGradOutput, (ushort*)output, ldOutput, (ushort*)gradLogits, ldGradLogits));

    [UnmanagedCallersOnly(EntryPoint = "nsm_log_softmax_backward_f16")]
    public static int LogSoftmaxBackwardF16(long rows, long cols, Float16Storage* gradOutput, long ldGradOutput,
        Float16Storage* output, long ldOutput, Float16Storage* gradLogits, long ldGradLogits) =>
        Invoke<HalfRowToRowOperation<Kernels.LogSoftmaxBackwardRow, Simd.Float16Format>, float>(new(rows, cols, (ushort*)gradOutput, ldGradOutput, (ushort*)output, ldOutput, (ushort*)gradLogits, ldGradLogits));

    [UnmanagedCallersOnly(EntryPoint = "nsm_softmax_jacobian_f16")]
    public static int SoftmaxJacobianF16(long cols, Float16Storage* logits, Float16Storage* jacobian, long ldJacobian) =>
        Invoke<HalfJacobianOperation<Simd.Float16Format>, float>(new(cols, (ushort*)logits, (ushort*)jacobian, ldJacobian));

    [UnmanagedCallersOnly(EntryPoint = "nsm_cross_entropy_f16")]
    public static int CrossEntropyF16(long rows, long cols, Float16Storage* logits, long ldLogits, long* target, float* weight,
        CrossEntropyOptionsV2* options, float* loss, Float16Storage* grad, long ldGrad) =>
        Invoke<HalfHardLabelCrossEntropyOperation<Simd.Float16Format, long, CrossEntropyOptionsPointer>, float>(
            new(rows, cols, (ushort*)logits, ldLogits, target, weight, new(options), loss, (ushort*)grad, ldGrad));

    [UnmanagedCallersOnly(EntryPoint = "nsm_cross_entropy_soft_f16")]
    public static int CrossEntropySoftF16(long rows, long cols, Float16Storage* logits, long ldLogits, Float16Storage* target, long ldTarget,
        float* weight, CrossEntropyOptionsV2* options, float* loss, Float16Storage* grad, long ldGrad) =>
        Invoke<HalfSoftTargetCrossEntropyOperation<Simd.Float16Format, CrossEntropyOptionsPointer>, float>(
            new(rows, cols, (ushort*)logits, ldLogits, (ushort*)target, ldTarget, weight, new(options), loss, (ushort*)grad, ldGrad));
}

/// <summary>nsm_cross_entropy_options as version 2 of the header lays it out (40 bytes): version 1
/// (the first <see cref="Version1Size"/> bytes) and grad_output.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct CrossEntropyOptionsV2
{
    /// <summary>The size of version 1, which ends with grad_scale: the least struct_size accepted.</summary>
    public const uint Version1Size = 32;

    public uint StructSize;
    public int Reduction;
    public long IgnoreIndex;
    public double LabelSmoothing;
    public double GradScale;
    public void* GradOutput;
}

/// <summary>
/// The caller's options pointer, read by the operation's Prepare (so inside Invoke's guarded
/// region): NULL means the defaults; struct_size must cover version 1. The fields that lie wholly
/// within struct_size are read (a version-1 struct leaves grad_output NULL); every other byte it
/// covers (a newer header's fields) must be zero, at most <see cref="Checks.MaxStructBytes"/> of
/// them read.
/// </summary>
internal readonly unsafe struct CrossEntropyOptionsPointer(CrossEntropyOptionsV2* options) : ILossOptionsSource
{
    public bool TryRead(out LossOptions read, [NotNullWhen(false)] out Failure? failure)
    {
        read = CrossEntropyOptions.Default.ToLossOptions();
        failure = null;
        if (options == null)
        {
            return true;
        }
        uint size = options->StructSize;
        if (size < CrossEntropyOptionsV2.Version1Size)
        {
            failure = new Failure(Status.InvalidArgument, "options",
                $"options->struct_size is {size}; set it to sizeof(nsm_cross_entropy_options) ({sizeof(CrossEntropyOptionsV2)}, "
                + $"or {CrossEntropyOptionsV2.Version1Size} for version 1), e.g. with NSM_CROSS_ENTROPY_OPTIONS_INIT.");
            return false;
        }
        bool version2 = size >= sizeof(CrossEntropyOptionsV2);
        uint known = version2 ? (uint)sizeof(CrossEntropyOptionsV2) : CrossEntropyOptionsV2.Version1Size;
        if (!Checks.UnknownBytesZero((byte*)options, size, known, "options", out failure))
        {
            return false;
        }
        read = new LossOptions((Reduction)options->Reduction, options->IgnoreIndex, options->LabelSmoothing, options->GradScale,
            version2 ? options->GradOutput : null);
        return true;
    }
}

/// <summary>nsm_bfloat16 as the header lays it out: the bits of one bfloat16.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct BFloat16Storage
{
    public ushort Bits;
}

/// <summary>nsm_float16 as the header lays it out: the bits of one IEEE binary16.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct Float16Storage
{
    public ushort Bits;
}
