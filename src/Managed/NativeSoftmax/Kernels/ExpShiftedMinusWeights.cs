using System.Numerics;
using System.Runtime.CompilerServices;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Kernels;

/// <summary>exp(z_i − shift)·scale − offset·w_i (w = 1 without weights): the hard-label
/// cross-entropy gradient of a vocabulary shard in one pass, from the merged maximum (shift) and
/// sum, before the label's own −(1 − ε)·w_t is added; <see cref="ScaledMinusWeights{TVec, T}"/>
/// with the exponential formed here instead of stored first.</summary>
internal readonly unsafe struct ExpShiftedMinusWeights<TVec, T>(T* z, T shift, T scale, T offset, T* weight)
    : IRowFunction<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    private readonly TVec _negativeShift = TVec.Create(T.Zero) - TVec.Create(shift);
    private readonly TVec _scale = TVec.Create(scale);
    private readonly TVec _negativeOffset = TVec.Create(-offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVec Apply(nuint i)
    {
        TVec w = weight == null ? TVec.Create(T.One) : TVec.Load(weight + i);
        TVec e = VecMath.ExpOfSum<TVec, T>(TVec.Load(z + i), _negativeShift);
        return TVec.MultiplyAdd(_negativeOffset, w, e * _scale);
    }
}
