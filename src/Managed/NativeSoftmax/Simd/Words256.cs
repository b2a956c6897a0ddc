using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace NativeSoftmax.Simd;

/// <summary>The 256-bit width of the half-precision conversions: two <see cref="Vector256{T}"/> of
/// uint lanes per step.</summary>
internal readonly struct Words256 : IWordVec<Words256>
{
    private readonly Vector256<uint> _v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Words256(Vector256<uint> v) => _v = v;

    public static int Step => 2 * Vector256<uint>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words256 Create(uint value) => new(Vector256.Create(value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void LoadWidening(ushort* source, out Words256 lower, out Words256 upper)
    {
        Vector256<ushort> halves = Vector256.Load(source);
        lower = new(Vector256.WidenLower(halves));
        upper = new(Vector256.WidenUpper(halves));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void StoreNarrowing(Words256 lower, Words256 upper, ushort* destination)
    {
        Debug.Assert(Vector256.LessThanAll(lower._v, Vector256.Create(0x1_0000u)) && Vector256.LessThanAll(upper._v, Vector256.Create(0x1_0000u)),
            "lanes to narrow are 16-bit values");
        if (Avx2.IsSupported)
        {
            // The lanes are below 2^16 (IWordVec), so the saturating pack keeps them as they are:
            // no masking first, as Vector256.Narrow does. The pack works per 128-bit half; the
            // permute puts the four 64-bit quarters back in order.
            Vector256<ushort> packed = Avx2.PackUnsignedSaturate(lower._v.AsInt32(), upper._v.AsInt32());
            Avx2.Permute4x64(packed.AsUInt64(), 0b11_01_10_00).AsUInt16().Store(destination);
            return;
        }
        Vector256.Narrow(lower._v, upper._v).Store(destination);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void LoadSingles(float* source, out Words256 lower, out Words256 upper)
    {
        lower = new(Vector256.Load((uint*)source));
        upper = new(Vector256.Load((uint*)source + Vector256<uint>.Count));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void StoreSingles(Words256 lower, Words256 upper, float* destination)
    {
        lower._v.Store((uint*)destination);
        upper._v.Store((uint*)destination + Vector256<uint>.Count);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words256 operator &(Words256 left, Words256 right) => new(left._v & right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words256 operator |(Words256 left, Words256 right) => new(left._v | right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words256 operator +(Words256 left, Words256 right) => new(left._v + right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words256 operator -(Words256 left, Words256 right) => new(left._v - right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words256 operator <<(Words256 value, int count) => new(value._v << count);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words256 operator >>>(Words256 value, int count) => new(value._v >>> count);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words256 GreaterThan(Words256 left, Words256 right) => new(Vector256.GreaterThan(left._v.AsInt32(), right._v.AsInt32()).AsUInt32());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words256 EqualTo(Words256 left, Words256 right) => new(Vector256.Equals(left._v, right._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words256 Select(Words256 mask, Words256 ifTrue, Words256 ifFalse) =>
        Avx2.IsSupported // one byte blend: every byte of a lane of the mask is 0x00 or 0xFF (IWordVec)
            ? new(Avx2.BlendVariable(ifFalse._v.AsByte(), ifTrue._v.AsByte(), mask._v.AsByte()).AsUInt32())
            : new(Vector256.ConditionalSelect(mask._v, ifTrue._v, ifFalse._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words256 AddSingles(Words256 left, Words256 right) => new((left._v.AsSingle() + right._v.AsSingle()).AsUInt32());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words256 SubtractSingles(Words256 left, Words256 right) => new((left._v.AsSingle() - right._v.AsSingle()).AsUInt32());
}
