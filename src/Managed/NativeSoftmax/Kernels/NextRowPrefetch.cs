using System.Numerics;
using System.Runtime.CompilerServices;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Kernels;

/// <summary>
/// Which rows prefetch the next row of their block while they compute their exponentials
/// (<see cref="ExpShiftedAhead{TVec, T}"/>): a row's maximum pass reads it from memory with little
/// arithmetic, and its exponential pass then computes in the first-level cache with memory idle,
/// so fetching the next row meanwhile overlaps the two (design.md §5a).
/// </summary>
internal static class NextRowPrefetch
{
    /// <summary>
    /// The shortest row that prefetches the next one: 1 KiB (256 float32 classes). Shorter rows
    /// measured slower with it (softmax and log_softmax at 65536 × 64 float32 34–42 %, 32768 × 128
    /// 3–10 %); 16384 × 256 2–11 % faster, 4096 × 1000 19–29 %.
    /// </summary>
    public const long FromRowBytes = 1024;

    /// <summary>
    /// The smallest matrix (the rows' span, in bytes) whose rows prefetch: 4 MiB. In the caches the
    /// prefetch only costs (1000-class cross-entropy forward 2–9 % slower at 0.25–2 MiB); from
    /// 4 MiB up, rows come from memory (2048 × 1000 float32, all four operations, 24–28 % faster).
    /// </summary>
    public const long FromMatrixBytes = 4L << 20;

    /// <summary>The distance to the next row, in elements, for a matrix of <paramref name="rows"/>
    /// rows of <paramref name="cols"/> elements <paramref name="ld"/> apart run by
    /// <typeparamref name="TLoop"/>; 0 for none (rows of <see cref="ShortRow{TVec, T}"/> or
    /// <see cref="ChunkedRowLoop{TVec, T}"/>, rows shorter than <see cref="FromRowBytes"/>, matrices
    /// smaller than <see cref="FromMatrixBytes"/>). The caller passes 0 for the last row of its block.
    /// softmax's and log_softmax's rows of 8192 classes or more take <see cref="RowLoop{TVec, T}"/> but
    /// go by <see cref="LongRow{TVec, T}"/>, which ignores the distance and prefetches by chunks.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe nuint Distance<TVec, T, TLoop>(long rows, long cols, long ld)
        where TVec : struct, IVec<TVec, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TLoop : struct, IRowLoop<TVec, T> =>
        typeof(TLoop) == typeof(RowLoop<TVec, T>) && cols * sizeof(T) >= FromRowBytes
            && Checks.Extent(rows, cols, ld) * sizeof(T) >= FromMatrixBytes ? (nuint)ld : 0;
}
