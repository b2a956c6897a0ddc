using System.Globalization;
using NativeSoftmax.Simd;

namespace NativeSoftmax;

/// <summary>
/// A bfloat16 value (the upper 16 bits of a float32: 1 sign, 8 exponent and 7 mantissa bits), the
/// storage type of the bfloat16 overloads of <see cref="SoftmaxPrimitives"/>. .NET 10 has no
/// bfloat16 type of its own, so this is a plain 16-bit struct with the same layout as C's
/// nsm_bfloat16 and torch.bfloat16: a span of it can be a view of their memory.
/// </summary>
public readonly struct BFloat16 : IEquatable<BFloat16>
{
    private readonly ushort _bits;

    private BFloat16(ushort bits) => _bits = bits;

    /// <summary>The value with these bits.</summary>
    public static BFloat16 FromBits(ushort bits) => new(bits);

    /// <summary>The bits of this value.</summary>
    public ushort Bits => _bits;

    /// <summary>The float32 nearest <paramref name="value"/>'s bfloat16, exactly: bfloat16 widens without rounding.</summary>
    public static explicit operator float(BFloat16 value) => BitConverter.UInt32BitsToSingle((uint)value._bits << 16);

    /// <summary>The bfloat16 nearest <paramref name="value"/>, ties to even; beyond the largest
    /// finite bfloat16 ±∞; NaN stays NaN. Subnormal results are kept.</summary>
    public static unsafe explicit operator BFloat16(float value)
    {
        ushort bits;
        HalfConversion<BFloat16Format>.Narrow<WordScalar>(&value, &bits, 1);
        return new(bits);
    }

    /// <summary>Bitwise equality (so NaN equals a NaN of the same bits, and +0 differs from −0).</summary>
    public bool Equals(BFloat16 other) => _bits == other._bits;

    /// <inheritdoc cref="Equals(BFloat16)"/>
    public override bool Equals(object? obj) => obj is BFloat16 other && Equals(other);

    /// <summary>The bits.</summary>
    public override int GetHashCode() => _bits;

    /// <summary>The value as float32 text (invariant culture).</summary>
    public override string ToString() => ((float)this).ToString(CultureInfo.InvariantCulture);
}
