using System.Runtime.CompilerServices;

namespace NativeSoftmax.Simd;

/// <summary>
/// A 16-bit storage format (<see cref="Float16Format"/>, <see cref="BFloat16Format"/>): how its
/// bits widen to float32 (exactly) and how a float32 narrows to it (rounded to nearest, ties to
/// even), written once over <see cref="IWordVec{TSelf}"/> so every width shares them.
/// </summary>
internal interface IHalfFormat
{
    /// <summary>The type's name in messages and the C ABI ("float16", "bfloat16").</summary>
    static abstract string Name { get; }

    /// <summary>Lanes of 16-bit values (in their low bits) to the bits of the equal float32s.</summary>
    static abstract TWords Widen<TWords>(TWords half)
        where TWords : struct, IWordVec<TWords>;

    /// <summary>
    /// Lanes of float32 bits to the 16-bit values nearest them (ties to even), in the lanes' low
    /// bits: magnitudes past the largest finite value round to ±∞, NaN stays NaN (quiet, sign
    /// and leading payload bits kept), subnormal results are kept (<see cref="NarrowFlushed"/>
    /// applies the flush rule).
    /// </summary>
    static abstract TWords Narrow<TWords>(TWords single)
        where TWords : struct, IWordVec<TWords>;

    /// <summary>
    /// <see cref="Narrow"/>, then the library's flush rule for this type: a result below its
    /// smallest normal number is 0 of the same sign. For a float32 source that follows float32's
    /// flush rule (no subnormal; every float32 output of the library does).
    /// </summary>
    static abstract TWords NarrowFlushed<TWords>(TWords single)
        where TWords : struct, IWordVec<TWords>;
}

/// <summary>IEEE 754 binary16 (<see cref="System.Half"/>, C's _Float16, numpy float16): 1 sign, 5
/// exponent and 10 mantissa bits.</summary>
internal readonly struct Float16Format : IHalfFormat
{
    public static string Name => "float16";

    // float32 exponent bias − binary16's (127 − 15), in the float32 exponent field.
    private const uint Rebias = 112u << 23;

    // binary16's exponent field, moved to where float32's lies (13 bits up).
    private const uint ShiftedExponent = 0x7C00u << 13;

    // 2^−14, the smallest normal binary16, as float32 bits.
    private const uint MinNormal = 113u << 23;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TWords Widen<TWords>(TWords half)
        where TWords : struct, IWordVec<TWords>
    {
        TWords magnitude = (half & TWords.Create(0x7FFF)) << 13;
        TWords exponent = magnitude & TWords.Create(ShiftedExponent);
        // Normal: rebias the exponent. ±∞ and NaN: rebias twice, so the field becomes 255 and
        // the mantissa (payload) is kept. ±0 and subnormals m·2^−24: read the mantissa as that of
        // 2^−14·(1 + m/1024) and subtract 2^−14, exact in float32.
        TWords normal = magnitude + TWords.Create(Rebias);
        TWords special = normal + TWords.Create(Rebias);
        TWords subnormal = TWords.SubtractSingles(magnitude + TWords.Create(MinNormal), TWords.Create(MinNormal));
        TWords result = TWords.Select(TWords.EqualTo(exponent, TWords.Create(ShiftedExponent)), special, normal);
        result = TWords.Select(TWords.EqualTo(exponent, TWords.Create(0)), subnormal, result);
        return result | ((half & TWords.Create(0x8000)) << 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TWords Narrow<TWords>(TWords single)
        where TWords : struct, IWordVec<TWords> =>
        Narrowed(single, flushed: false);

    /// <remarks>As <see cref="Narrow"/>, without its subnormal results: below 2^−14 every result
    /// is flushed but from 2^−14 − 2^−25 up (0x387FE000), which rounds to 2^−14 itself (0x400; the
    /// tie at 2^−14 − 2^−25 goes to its even mantissa). Holds for any source, subnormal or not.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TWords NarrowFlushed<TWords>(TWords single)
        where TWords : struct, IWordVec<TWords> =>
        Narrowed(single, flushed: true);

    /// <summary>Both narrowings; <paramref name="flushed"/> is a constant at each call, so each
    /// inlined copy keeps only its own results below 2^−14.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TWords Narrowed<TWords>(TWords single, bool flushed)
        where TWords : struct, IWordVec<TWords>
    {
        TWords sign = (single >>> 16) & TWords.Create(0x8000);
        TWords magnitude = single & TWords.Create(0x7FFF_FFFF);
        // NaN: quiet, with the payload's leading 10 bits.
        TWords nan = TWords.Create(0x7E00) | ((magnitude >>> 13) & TWords.Create(0x03FF));
        // Normal results (|x| ≥ 2^−14): rebias, then add just under half an ulp plus the kept
        // mantissa's lowest bit (ties to even) and drop 13 bits; a carry runs into the exponent.
        TWords rebiased = magnitude - TWords.Create(Rebias);
        TWords normal = (rebiased + TWords.Create(0x0FFF) + ((rebiased >>> 13) & TWords.Create(1))) >>> 13;
        // Below 2^−14, flushed: 0, or 2^−14 from 2^−14 − 2^−25 up. Not flushed: 0.5 + |x| in
        // float32 rounds |x| to a multiple of 2^−24 (float32's ulp at 0.5) to nearest even; the
        // sum's low bits are then the binary16 encoding (0x400 when it rounds up to 2^−14).
        TWords below = flushed
            ? TWords.GreaterThan(magnitude, TWords.Create(0x387F_DFFF)) & TWords.Create(0x0400)
            : TWords.AddSingles(magnitude, TWords.Create(0x3F00_0000)) - TWords.Create(0x3F00_0000);
        TWords result = TWords.Select(TWords.GreaterThan(magnitude, TWords.Create(0x387F_FFFF)), normal, below);
        // From 65520 (half-way between 65504, the largest finite binary16, whose mantissa is odd,
        // and 2^16) up, and ±∞: ∞.
        result = TWords.Select(TWords.GreaterThan(magnitude, TWords.Create(0x477F_EFFF)), TWords.Create(0x7C00), result);
        result = TWords.Select(TWords.GreaterThan(magnitude, TWords.Create(0x7F80_0000)), nan, result);
        return result | sign;
    }
}

/// <summary>bfloat16 (torch.bfloat16, AVX-512 BF16, Arm BF16): the upper 16 bits of a float32,
/// 1 sign, 8 exponent and 7 mantissa bits.</summary>
internal readonly struct BFloat16Format : IHalfFormat
{
    public static string Name => "bfloat16";

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TWords Widen<TWords>(TWords half)
        where TWords : struct, IWordVec<TWords> =>
        half << 16;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TWords Narrow<TWords>(TWords single)
        where TWords : struct, IWordVec<TWords>
    {
        // Add just under half an ulp plus the kept lowest bit (ties to even) and drop 16 bits; a
        // carry runs into the exponent, and past the largest finite value into ∞.
        TWords rounded = (single + TWords.Create(0x7FFF) + ((single >>> 16) & TWords.Create(1))) >>> 16;
        TWords nan = (single >>> 16) | TWords.Create(0x0040);
        return TWords.Select(TWords.GreaterThan(single & TWords.Create(0x7FFF_FFFF), TWords.Create(0x7F80_0000)), nan, rounded);
    }

    /// <remarks>The same as <see cref="Narrow"/>: bfloat16's smallest normal number is float32's
    /// (its exponent is float32's), and rounding never goes below a value both types hold, so a
    /// float32 source that is 0 or normal narrows to 0 or a normal bfloat16; no test is needed.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TWords NarrowFlushed<TWords>(TWords single)
        where TWords : struct, IWordVec<TWords> =>
        Narrow(single);
}
