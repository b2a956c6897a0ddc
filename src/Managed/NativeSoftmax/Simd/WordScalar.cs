using System.Runtime.CompilerServices;

namespace NativeSoftmax.Simd;

/// <summary>One element at a time: the conversions of rows shorter than a step of the width in
/// use, written in the same operations as the vector widths (the upper "vector" repeats the lower
/// and is never stored).</summary>
internal readonly struct WordScalar : IWordVec<WordScalar>
{
    private readonly uint _v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private WordScalar(uint v) => _v = v;

    public static int Step => 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static WordScalar Create(uint value) => new(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void LoadWidening(ushort* source, out WordScalar lower, out WordScalar upper) =>
        upper = lower = new(*source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void StoreNarrowing(WordScalar lower, WordScalar upper, ushort* destination) =>
        *destination = (ushort)lower._v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void LoadSingles(float* source, out WordScalar lower, out WordScalar upper) =>
        upper = lower = new(*(uint*)source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void StoreSingles(WordScalar lower, WordScalar upper, float* destination) =>
        *(uint*)destination = lower._v;

    public static WordScalar operator &(WordScalar left, WordScalar right) => new(left._v & right._v);
    public static WordScalar operator |(WordScalar left, WordScalar right) => new(left._v | right._v);
    public static WordScalar operator +(WordScalar left, WordScalar right) => new(left._v + right._v);
    public static WordScalar operator -(WordScalar left, WordScalar right) => new(left._v - right._v);
    public static WordScalar operator <<(WordScalar value, int count) => new(value._v << count);
    public static WordScalar operator >>>(WordScalar value, int count) => new(value._v >>> count);
    public static WordScalar GreaterThan(WordScalar left, WordScalar right) => new((int)left._v > (int)right._v ? uint.MaxValue : 0);
    public static WordScalar EqualTo(WordScalar left, WordScalar right) => new(left._v == right._v ? uint.MaxValue : 0);
    public static WordScalar Select(WordScalar mask, WordScalar ifTrue, WordScalar ifFalse) =>
        new((mask._v & ifTrue._v) | (~mask._v & ifFalse._v));

    public static WordScalar AddSingles(WordScalar left, WordScalar right) =>
        new(BitConverter.SingleToUInt32Bits(BitConverter.UInt32BitsToSingle(left._v) + BitConverter.UInt32BitsToSingle(right._v)));

    public static WordScalar SubtractSingles(WordScalar left, WordScalar right) =>
        new(BitConverter.SingleToUInt32Bits(BitConverter.UInt32BitsToSingle(left._v) - BitConverter.UInt32BitsToSingle(right._v)));
}
