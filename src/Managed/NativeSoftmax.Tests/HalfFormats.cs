namespace NativeSoftmax.Tests;

/// <summary>
/// The two 16-bit types as the tests see them, written from their definitions and independent of
/// the library's conversions: decoding a bit pattern, rounding a float64 to the nearest value
/// (ties to even), and the size of one ulp.
/// </summary>
public enum HalfType
{
    BFloat16,
    Float16,
}

internal static class HalfFormats
{
    public static readonly HalfType[] All = [HalfType.BFloat16, HalfType.Float16];

    public static TheoryData<Width, HalfType> WidthsAndTypes()
    {
        var data = new TheoryData<Width, HalfType>();
        foreach (Width width in new[] { Width.Scalar, Width.V128, Width.V256, Width.V512 })
        {
            foreach (HalfType type in All)
            {
                data.Add(width, type);
            }
        }
        return data;
    }

    public static int MantissaBits(HalfType type) => type == HalfType.BFloat16 ? 7 : 10;

    public static int MinExponent(HalfType type) => type == HalfType.BFloat16 ? -126 : -14;

    public static double MinNormal(HalfType type) => Math.Pow(2, MinExponent(type));

    /// <summary>The largest finite value: (2 − 2^−p)·2^emax.</summary>
    public static double MaxFinite(HalfType type) =>
        type == HalfType.BFloat16 ? (2 - Math.Pow(2, -7)) * Math.Pow(2, 127) : 65504.0;

    /// <summary>The value of a bit pattern: sign, exponent field, mantissa field.</summary>
    public static double Decode(HalfType type, ushort bits)
    {
        int mantissaBits = MantissaBits(type);
        int exponentBits = 15 - mantissaBits;
        int bias = (1 << (exponentBits - 1)) - 1;
        int field = (bits >> mantissaBits) & ((1 << exponentBits) - 1);
        int mantissa = bits & ((1 << mantissaBits) - 1);
        double sign = (bits & 0x8000) != 0 ? -1.0 : 1.0;
        if (field == (1 << exponentBits) - 1)
        {
            return mantissa == 0 ? sign * double.PositiveInfinity : double.NaN;
        }
        double scale = Math.Pow(2, -mantissaBits);
        return field == 0
            ? sign * mantissa * scale * Math.Pow(2, 1 - bias)
            : sign * (1 + mantissa * scale) * Math.Pow(2, field - bias);
    }

    /// <summary>x rounded to the nearest value of the type, ties to even (no flush).</summary>
    public static double Round(HalfType type, double x)
    {
        if (double.IsNaN(x) || double.IsInfinity(x) || x == 0)
        {
            return x;
        }
        double magnitude = Math.Abs(x);
        int mantissaBits = MantissaBits(type);
        int exponent = Math.Max((int)Math.Floor(Math.Log2(magnitude)), MinExponent(type));
        if (Math.Pow(2, exponent) > magnitude)
        {
            exponent--; // Log2 rounded up across a power of two
        }
        exponent = Math.Max(exponent, MinExponent(type));
        double quantum = Math.Pow(2, exponent - mantissaBits);
        double rounded = Math.Round(magnitude / quantum, MidpointRounding.ToEven) * quantum;
        if (rounded > MaxFinite(type))
        {
            rounded = double.PositiveInfinity;
        }
        return Math.CopySign(rounded, x);
    }

    /// <summary>The bits of a value of the type (x must be one, or NaN or ±∞).</summary>
    public static ushort Encode(HalfType type, double x)
    {
        if (type == HalfType.Float16)
        {
            return BitConverter.HalfToUInt16Bits((Half)x); // exact: x is a float16 value
        }
        return double.IsNaN(x) ? (ushort)0x7FC0 : (ushort)(BitConverter.SingleToUInt32Bits((float)x) >> 16);
    }

    /// <summary>One ulp of the type at the magnitude of x (its subnormal spacing below the smallest normal).</summary>
    public static double Ulp(HalfType type, double x)
    {
        double magnitude = Math.Abs(x);
        int exponent = magnitude < MinNormal(type) ? MinExponent(type) : (int)Math.Floor(Math.Log2(magnitude));
        return Math.Pow(2, exponent - MantissaBits(type));
    }

    /// <summary>Data for a test: x rounded to the type, as bits.</summary>
    public static ushort FromDouble(HalfType type, double x) => Encode(type, Round(type, x));
}
