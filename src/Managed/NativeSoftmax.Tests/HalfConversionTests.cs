using NativeSoftmax.Simd;

namespace NativeSoftmax.Tests;

/// <summary>
/// The vectorised 16-bit conversions at every width (forced, whatever the CPU): all 65536 bit
/// patterns widened, and many float32s narrowed (ties, the boundaries of overflow, the smallest
/// normal and subnormals, NaN, ±∞, random bit patterns), against <see cref="HalfFormats"/>
/// written from the definitions, and for float16 also .NET's own (Half)float, which rounds to
/// nearest even. Lengths that are not a multiple of the step exercise the overlapping last step.
/// </summary>
public unsafe class HalfConversionTests
{
    public static TheoryData<string, HalfType> Widths()
    {
        var data = new TheoryData<string, HalfType>();
        foreach (string width in new[] { "scalar", "128", "256", "512" })
        {
            foreach (HalfType type in HalfFormats.All)
            {
                data.Add(width, type);
            }
        }
        return data;
    }

    private static void Widen(string width, HalfType type, ushort* source, float* destination, nuint n)
    {
        if (type == HalfType.BFloat16)
        {
            Widen<BFloat16Format>(width, source, destination, n);
        }
        else
        {
            Widen<Float16Format>(width, source, destination, n);
        }
    }

    private static void Widen<TFormat>(string width, ushort* source, float* destination, nuint n)
        where TFormat : struct, IHalfFormat
    {
        switch (width)
        {
            case "scalar": HalfConversion<TFormat>.Widen<WordScalar>(source, destination, n); break;
            case "128": HalfConversion<TFormat>.Widen<Words128>(source, destination, n); break;
            case "256": HalfConversion<TFormat>.Widen<Words256>(source, destination, n); break;
            default: HalfConversion<TFormat>.Widen<Words512>(source, destination, n); break;
        }
    }

    private static void Narrow(string width, HalfType type, bool flushed, float* source, ushort* destination, nuint n)
    {
        if (type == HalfType.BFloat16)
        {
            Narrow<BFloat16Format>(width, flushed, source, destination, n);
        }
        else
        {
            Narrow<Float16Format>(width, flushed, source, destination, n);
        }
    }

    private static void Narrow<TFormat>(string width, bool flushed, float* source, ushort* destination, nuint n)
        where TFormat : struct, IHalfFormat
    {
        switch (width)
        {
            case "scalar" when flushed: HalfConversion<TFormat>.NarrowFlushed<WordScalar>(source, destination, n); break;
            case "scalar": HalfConversion<TFormat>.Narrow<WordScalar>(source, destination, n); break;
            case "128" when flushed: HalfConversion<TFormat>.NarrowFlushed<Words128>(source, destination, n); break;
            case "128": HalfConversion<TFormat>.Narrow<Words128>(source, destination, n); break;
            case "256" when flushed: HalfConversion<TFormat>.NarrowFlushed<Words256>(source, destination, n); break;
            case "256": HalfConversion<TFormat>.Narrow<Words256>(source, destination, n); break;
            case "512" when flushed: HalfConversion<TFormat>.NarrowFlushed<Words512>(source, destination, n); break;
            default: HalfConversion<TFormat>.Narrow<Words512>(source, destination, n); break;
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void EveryBitPatternWidensExactly(string width, HalfType type)
    {
        // 65536 + 13: the last step overlaps the one before.
        int n = 65536 + 13;
        var bits = new ushort[n];
        for (int i = 0; i < n; i++)
        {
            bits[i] = (ushort)i;
        }
        var widened = new float[n + 1];
        widened[n] = -7f; // guard
        fixed (ushort* s = bits)
        fixed (float* d = widened)
        {
            Widen(width, type, s, d, (nuint)n);
        }
        Assert.Equal(-7f, widened[n]);
        for (int i = 0; i < n; i++)
        {
            double expected = HalfFormats.Decode(type, bits[i]);
            float actual = widened[i];
            if (double.IsNaN(expected))
            {
                Assert.True(float.IsNaN(actual), $"{type} 0x{bits[i]:X4} widened to {actual}, not NaN");
                continue;
            }
            Assert.True(expected == actual && double.IsNegative(expected) == float.IsNegative(actual),
                $"{type} 0x{bits[i]:X4} widened to {actual:R} (bits 0x{BitConverter.SingleToUInt32Bits(actual):X8}), not {expected:R}");
            if (type == HalfType.Float16)
            {
                Assert.Equal(BitConverter.SingleToUInt32Bits((float)BitConverter.UInt16BitsToHalf(bits[i])), BitConverter.SingleToUInt32Bits(actual));
            }
        }
    }

    /// <summary>The float32s to narrow: every tie and its neighbours around each 16-bit value
    /// of interest, the overflow and underflow boundaries, specials, and random bit patterns.</summary>
    private static float[] NarrowingInputs(HalfType type)
    {
        var values = new List<float>();
        int dropped = type == HalfType.BFloat16 ? 16 : 13;
        for (int h = 0; h < 0x10000; h += type == HalfType.BFloat16 ? 1 : 1)
        {
            double v = HalfFormats.Decode(type, (ushort)h);
            if (!double.IsFinite(v))
            {
                continue;
            }
            float f = (float)v;
            uint b = BitConverter.SingleToUInt32Bits(f);
            if (type == HalfType.BFloat16)
            {
                // the half-way point to the next bfloat16 and its float32 neighbours
                uint tie = b + (1u << (dropped - 1));
                values.AddRange([BitConverter.UInt32BitsToSingle(tie), BitConverter.UInt32BitsToSingle(tie - 1), BitConverter.UInt32BitsToSingle(tie + 1), f]);
            }
            else
            {
                double next = HalfFormats.Decode(type, (ushort)(h + 1));
                if (double.IsFinite(next) || double.IsInfinity(next))
                {
                    double upper = double.IsInfinity(next) ? Math.CopySign(65536.0, v) : next;
                    float tie = (float)((v + upper) / 2);
                    values.AddRange([tie, MathF.BitDecrement(tie), MathF.BitIncrement(tie), f]);
                }
            }
        }
        values.AddRange([float.NaN, -float.NaN, BitConverter.UInt32BitsToSingle(0x7F80_0001), BitConverter.UInt32BitsToSingle(0xFFC1_2345),
            float.PositiveInfinity, float.NegativeInfinity, float.MaxValue, -float.MaxValue, float.Epsilon, -float.Epsilon,
            1.17549435e-38f, 65504f, 65519.99f, 65520f, 65536f, -65520f, 0f, -0f, 6.1035156e-5f, 5.9604645e-8f, 2.9802322e-8f, 2.9802326e-8f]);
        var random = new Random(71);
        for (int i = 0; i < 200_000; i++)
        {
            values.Add(BitConverter.UInt32BitsToSingle((uint)random.NextInt64(0, 1L << 32)));
        }
        values.Add(3f); // an odd count: the last step overlaps
        return [.. values];
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void NarrowingRoundsToNearestEven(string width, HalfType type)
    {
        float[] inputs = NarrowingInputs(type);
        int n = inputs.Length;
        var exact = new ushort[n + 1];
        var flushed = new ushort[n + 1];
        exact[n] = flushed[n] = 0xBEEF; // guard
        // The flushing narrowing's source follows float32's flush rule (NarrowFlushed): float32
        // subnormals come to it as 0 of their sign.
        float[] flushedInputs = [.. inputs.Select(x => float.IsSubnormal(x) ? (float.IsNegative(x) ? -0f : 0f) : x)];
        fixed (float* s = inputs)
        fixed (float* sf = flushedInputs)
        fixed (ushort* e = exact)
        fixed (ushort* f = flushed)
        {
            Narrow(width, type, flushed: false, s, e, (nuint)n);
            Narrow(width, type, flushed: true, sf, f, (nuint)n);
        }
        Assert.Equal(0xBEEF, exact[n]);
        Assert.Equal(0xBEEF, flushed[n]);
        for (int i = 0; i < n; i++)
        {
            float x = inputs[i];
            string what = $"{type} narrowing {x:R} (0x{BitConverter.SingleToUInt32Bits(x):X8})";
            if (float.IsNaN(x))
            {
                Assert.True(double.IsNaN(HalfFormats.Decode(type, exact[i])), $"{what} gave 0x{exact[i]:X4}, not NaN");
                Assert.Equal(float.IsNegative(x), (exact[i] & 0x8000) != 0);
                Assert.Equal(exact[i], flushed[i]);
                continue;
            }
            ushort expected = HalfFormats.Encode(type, HalfFormats.Round(type, x));
            if (x == 0 || HalfFormats.Round(type, x) == 0)
            {
                expected = (ushort)(float.IsNegative(x) ? 0x8000 : 0); // the sign of a zero is kept
            }
            Assert.True(expected == exact[i], $"{what} gave 0x{exact[i]:X4}, not 0x{expected:X4}");
            if (type == HalfType.Float16)
            {
                Assert.Equal(BitConverter.HalfToUInt16Bits((Half)x), exact[i]);
            }
            ushort fromFlushed = float.IsSubnormal(x) ? (ushort)(expected & 0x8000) : expected;
            double value = HalfFormats.Decode(type, fromFlushed);
            ushort expectedFlushed = Math.Abs(value) < HalfFormats.MinNormal(type) ? (ushort)(fromFlushed & 0x8000) : fromFlushed;
            Assert.True(expectedFlushed == flushed[i], $"{what} flushed gave 0x{flushed[i]:X4}, not 0x{expectedFlushed:X4}");
        }
    }
}
