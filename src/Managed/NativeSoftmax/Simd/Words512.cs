using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace NativeSoftmax.Simd;

/// <summary>The 512-bit width of the half-precision conversions: two <see cref="Vector512{T}"/> of
/// uint lanes per step.</summary>
internal readonly struct Words512 : IWordVec<Words512>
{
    private readonly Vector512<uint> _v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Words512(Vector512<uint> v) => _v = v;

    public static int Step => 2 * Vector512<uint>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words512 Create(uint value) => new(Vector512.Create(value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void LoadWidening(ushort* source, out Words512 lower, out Words512 upper)
    {
        Vector512<ushort> halves = Vector512.Load(source);
        lower = new(Vector512.WidenLower(halves));
        upper = new(Vector512.WidenUpper(halves));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void StoreNarrowing(Words512 lower, Words512 upper, ushort* destination) =>
        Vector512.Narrow(lower._v, upper._v).Store(destination);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void LoadSingles(float* source, out Words512 lower, out Words512 upper)
    {
        lower = new(Vector512.Load((uint*)source));
        upper = new(Vector512.Load((uint*)source + Vector512<uint>.Count));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void StoreSingles(Words512 lower, Words512 upper, float* destination)
    {
        lower._v.Store((uint*)destination);
        upper._v.Store((uint*)destination + Vector512<uint>.Count);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words512 operator &(Words512 left, Words512 right) => new(left._v & right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words512 operator |(Words512 left, Words512 right) => new(left._v | right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words512 operator +(Words512 left, Words512 right) => new(left._v + right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words512 operator -(Words512 left, Words512 right) => new(left._v - right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words512 operator <<(Words512 value, int count) => new(value._v << count);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words512 operator >>>(Words512 value, int count) => new(value._v >>> count);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words512 GreaterThan(Words512 left, Words512 right) => new(Vector512.GreaterThan(left._v.AsInt32(), right._v.AsInt32()).AsUInt32());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words512 EqualTo(Words512 left, Words512 right) => new(Vector512.Equals(left._v, right._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words512 Select(Words512 mask, Words512 ifTrue, Words512 ifFalse) =>
        new(Vector512.ConditionalSelect(mask._v, ifTrue._v, ifFalse._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words512 AddSingles(Words512 left, Words512 right) => new((left._v.AsSingle() + right._v.AsSingle()).AsUInt32());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words512 SubtractSingles(Words512 left, Words512 right) => new((left._v.AsSingle() - right._v.AsSingle()).AsUInt32());
}
