using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Operations;

/// <summary>
/// One batched operation with its arguments bound: validated once, then run at one SIMD width.
/// Both the managed API and the C exports build these structs, so validation and computation are
/// written once.
/// </summary>
internal interface IRowOperation<T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    /// <summary>Row length: decides which widths fit.</summary>
    long Cols { get; }

    /// <summary>Checks every argument (and precomputes what the run needs). Writes nothing.</summary>
    bool Prepare([NotNullWhen(false)] out Failure? failure);

    /// <summary>Computes at width <typeparamref name="TVec"/>; needs Cols ≥ TVec.Count.</summary>
    void Run<TVec>() where TVec : struct, IVec<TVec, T>;
}

/// <summary>Picks the SIMD width for an operation.</summary>
internal static class Dispatch
{
    /// <summary>
    /// Runs at the widest width the CPU accelerates that fits in one row; rows shorter than the
    /// narrowest vector run one lane at a time.
    /// </summary>
    public static void Run<TOperation, T>(ref TOperation operation)
        where TOperation : struct, IRowOperation<T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        long cols = operation.Cols;
        if (Vec512<T>.IsHardwareAccelerated && cols >= Vec512<T>.Count)
        {
            operation.Run<Vec512<T>>();
        }
        else if (Vec256<T>.IsHardwareAccelerated && cols >= Vec256<T>.Count)
        {
            operation.Run<Vec256<T>>();
        }
        else if (Vec128<T>.IsHardwareAccelerated && cols >= Vec128<T>.Count)
        {
            operation.Run<Vec128<T>>();
        }
        else
        {
            operation.Run<VecScalar<T>>();
        }
    }

    /// <summary>
    /// Runs at a chosen width whatever the CPU (a width it lacks is emulated in software), falling
    /// back to one lane for rows shorter than a vector: how tests and benchmarks reach every width.
    /// </summary>
    public static void RunAtWidth<TOperation, T, TVec>(ref TOperation operation)
        where TOperation : struct, IRowOperation<T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TVec : struct, IVec<TVec, T>
    {
        if (operation.Cols >= TVec.Count)
        {
            operation.Run<TVec>();
        }
        else
        {
            operation.Run<VecScalar<T>>();
        }
    }

    /// <summary>
    /// The instruction-set path the widest accelerated width runs on, named as nsm_isa() names it
    /// (native/include/nativesoftmax.h): "avx512", "avx2", "sse4.2" or "neon"; null when no
    /// vector width is accelerated (only a JIT without SIMD, never a NativeAOT variant).
    /// </summary>
    public static string? Isa =>
        Vector512.IsHardwareAccelerated ? "avx512"
        : Vector256.IsHardwareAccelerated && Avx2.IsSupported ? "avx2"
        : AdvSimd.IsSupported ? "neon"
        : Sse42.IsSupported ? "sse4.2"
        : null;
}
