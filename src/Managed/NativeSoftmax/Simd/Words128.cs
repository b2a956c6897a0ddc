using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace NativeSoftmax.Simd;

/// <summary>The 128-bit width of the half-precision conversions: two <see cref="Vector128{T}"/> of
/// uint lanes per step.</summary>
internal readonly struct Words128 : IWordVec<Words128>
{
    private readonly Vector128<uint> _v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Words128(Vector128<uint> v) => _v = v;

    public static int Step => 2 * Vector128<uint>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words128 Create(uint value) => new(Vector128.Create(value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void LoadWidening(ushort* source, out Words128 lower, out Words128 upper)
    {
        Vector128<ushort> halves = Vector128.Load(source);
        lower = new(Vector128.WidenLower(halves));
        upper = new(Vector128.WidenUpper(halves));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void StoreNarrowing(Words128 lower, Words128 upper, ushort* destination)
    {
        Debug.Assert(Vector128.LessThanAll(lower._v, Vector128.Create(0x1_0000u)) && Vector128.LessThanAll(upper._v, Vector128.Create(0x1_0000u)),
            "lanes to narrow are 16-bit values");
        if (Sse41.IsSupported)
        {
            // The lanes are below 2^16 (IWordVec), so the saturating pack keeps them as they are:
            // no masking first, as Vector128.Narrow does.
            Sse41.PackUnsignedSaturate(lower._v.AsInt32(), upper._v.AsInt32()).Store(destination);
            return;
        }
        Vector128.Narrow(lower._v, upper._v).Store(destination);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void LoadSingles(float* source, out Words128 lower, out Words128 upper)
    {
        lower = new(Vector128.Load((uint*)source));
        upper = new(Vector128.Load((uint*)source + Vector128<uint>.Count));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void StoreSingles(Words128 lower, Words128 upper, float* destination)
    {
        lower._v.Store((uint*)destination);
        upper._v.Store((uint*)destination + Vector128<uint>.Count);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words128 operator &(Words128 left, Words128 right) => new(left._v & right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words128 operator |(Words128 left, Words128 right) => new(left._v | right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words128 operator +(Words128 left, Words128 right) => new(left._v + right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words128 operator -(Words128 left, Words128 right) => new(left._v - right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words128 operator <<(Words128 value, int count) => new(value._v << count);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words128 operator >>>(Words128 value, int count) => new(value._v >>> count);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words128 GreaterThan(Words128 left, Words128 right) => new(Vector128.GreaterThan(left._v.AsInt32(), right._v.AsInt32()).AsUInt32());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words128 EqualTo(Words128 left, Words128 right) => new(Vector128.Equals(left._v, right._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words128 Select(Words128 mask, Words128 ifTrue, Words128 ifFalse) =>
        Sse41.IsSupported // one byte blend: every byte of a lane of the mask is 0x00 or 0xFF (IWordVec)
            ? new(Sse41.BlendVariable(ifFalse._v.AsByte(), ifTrue._v.AsByte(), mask._v.AsByte()).AsUInt32())
            : new(Vector128.ConditionalSelect(mask._v, ifTrue._v, ifFalse._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words128 AddSingles(Words128 left, Words128 right) => new((left._v.AsSingle() + right._v.AsSingle()).AsUInt32());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words128 SubtractSingles(Words128 left, Words128 right) => new((left._v.AsSingle() - right._v.AsSingle()).AsUInt32());
}
