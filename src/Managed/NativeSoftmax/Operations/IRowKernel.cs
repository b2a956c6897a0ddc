using System.Numerics;
using NativeSoftmax.Kernels;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Operations;

/// <summary>
/// What a row-to-row operation computes for one row (Kernels/RowKernels.cs), and the C names of
/// its arguments (for messages and span checks). <see cref="RowToRowOperation{TKernel, T}"/> runs
/// a kernel over a batch.
/// </summary>
internal interface IRowKernel
{
    static abstract ArgumentName Input { get; }

    /// <summary>The second input, or null for a kernel of one input.</summary>
    static abstract ArgumentName? SecondInput { get; }

    static abstract ArgumentName Output { get; }

    /// <summary>One row: reads input (and secondInput), writes output (which may be exactly either).
    /// <paramref name="nextRowDistance"/>: elements from this row's input to the next row's, when the
    /// caller computes that row next on this thread (a kernel may prefetch it,
    /// <see cref="NextRowPrefetch"/>); else 0.</summary>
    static abstract unsafe void Row<TVec, T, TLoop>(T* input, T* secondInput, T* output, nuint n, nuint nextRowDistance)
        where TVec : struct, IVec<TVec, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TLoop : struct, IRowLoop<TVec, T>;

    /// <summary>Whether the kernel computes long rows by chunks (<see cref="LongRow{TVec, T}"/>), and so
    /// a long 16-bit row chunk by chunk too (<see cref="HalfLongRow"/>).</summary>
    static virtual bool ConvertsLongRowsByChunks => false;

    /// <summary>One long row (<see cref="LongRow{TVec, T}.Fits"/>) of 16-bit storage, converted chunk
    /// by chunk through <paramref name="scratch"/> (n floats). Called only when
    /// <see cref="ConvertsLongRowsByChunks"/>.</summary>
    static virtual unsafe void HalfLongRow<TVec>(LongRow<TVec, float>.HalfStorage half, float* scratch, nuint n)
        where TVec : struct, IVec<TVec, float>
    {
    }

    /// <summary>Whether the kernel computes short rows across lanes (<see cref="Lanes"/>).</summary>
    static virtual bool RunsAcrossLanes => false;

    /// <summary>Count rows at once, staged transposed (<see cref="LaneTile{TVec, T}"/>): reads the
    /// input tile (and the second input's), writes the output into the input tile. Called only
    /// when <see cref="RunsAcrossLanes"/>.</summary>
    static virtual unsafe void Lanes<TVec, T>(T* tile, T* secondTile, nuint n)
        where TVec : struct, IVec<TVec, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
    }
}
