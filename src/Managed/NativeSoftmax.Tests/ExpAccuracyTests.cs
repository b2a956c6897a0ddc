using System.Numerics;
using NativeSoftmax.Simd;
using Xunit.Abstractions;

namespace NativeSoftmax.Tests;

/// <summary>
/// VecMath.Exp at every width and with both roundings of its multiply-adds (the builds with and
/// without FMA): the maximum error in ulps over dense samples of the softmax domain ([−104, 0]
/// float, [−745, 0] double), and the special values the header documents.
/// </summary>
public class ExpAccuracyTests(ITestOutputHelper output)
{
    /// <summary>The claim in nativesoftmax.h ("Numerics"): a maximum error below 1.25 ulp, with or without FMA.</summary>
    private const double ClaimedUlps = 1.25;

    /// <summary>The worst floats of an exhaustive search over [ln FLT_MIN, 0], sampled explicitly:
    /// 1.176 ulp without FMA, 0.882 ulp with it (the degree-6 float polynomial of VecMath).</summary>
    private static readonly double[] KnownWorstFloats = [-71.0455322265625, -26.685649871826172];

    private const double FloatMinNormal = 1.1754943508222875e-38;           // 2^−126
    private static readonly double LnFloatMin = -87.33654475055310898657;   // ln(2^−126)
    private static readonly double LnDoubleMin = -708.39641853226410622;    // ln(2^−1022)

    public static TheoryData<Width, string, Evaluation> KernelWidthsTypesAndEvaluations()
    {
        var data = new TheoryData<Width, string, Evaluation>();
        foreach (Width width in Cases.AllWidths.Where(w => w != Width.PublicApi))
        {
            foreach (string dtype in Cases.Dtypes)
            {
                foreach (Evaluation evaluation in Enum.GetValues<Evaluation>())
                {
                    data.Add(width, dtype, evaluation);
                }
            }
        }
        return data;
    }

    public static TheoryData<Width, string> KernelWidthsAndTypes()
    {
        var data = new TheoryData<Width, string>();
        foreach (Width width in Cases.AllWidths.Where(w => w != Width.PublicApi))
        {
            foreach (string dtype in Cases.Dtypes)
            {
                data.Add(width, dtype);
            }
        }
        return data;
    }

    /// <summary>e^x for every element of <paramref name="x"/> (a multiple of 16 long) at the given
    /// width, with its multiply-adds as the CPU running the tests does them.</summary>
    internal static T[] Exp<T>(Width width, T[] x)
        where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
        width switch
        {
            Width.Scalar => ExpAt<VecScalar<T>, T>(x),
            Width.V128 => ExpAt<Vec128<T>, T>(x),
            Width.V256 => ExpAt<Vec256<T>, T>(x),
            Width.V512 => ExpAt<Vec512<T>, T>(x),
            _ => throw new ArgumentOutOfRangeException(nameof(width)),
        };

    /// <summary>e^x at the given width with its multiply-adds fused or not, whatever the CPU.</summary>
    internal static T[] Exp<T>(Width width, T[] x, Evaluation evaluation)
        where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
        evaluation == Evaluation.Fma ? ExpWith<T, FusedRule>(width, x) : ExpWith<T, UnfusedRule>(width, x);

    private static T[] ExpWith<T, TRule>(Width width, T[] x)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TRule : struct, IMultiplyAddRule =>
        width switch
        {
            Width.Scalar => ExpAt<WithMultiplyAdd<VecScalar<T>, T, TRule>, T>(x),
            Width.V128 => ExpAt<WithMultiplyAdd<Vec128<T>, T, TRule>, T>(x),
            Width.V256 => ExpAt<WithMultiplyAdd<Vec256<T>, T, TRule>, T>(x),
            Width.V512 => ExpAt<WithMultiplyAdd<Vec512<T>, T, TRule>, T>(x),
            _ => throw new ArgumentOutOfRangeException(nameof(width)),
        };

    private static unsafe T[] ExpAt<TVec, T>(T[] x)
        where TVec : struct, IVec<TVec, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        Assert.True(x.Length % TVec.Count == 0, $"sample count {x.Length} is not a multiple of {TVec.Count} lanes");
        var y = new T[x.Length];
        fixed (T* px = x)
        fixed (T* py = y)
        {
            for (int i = 0; i < x.Length; i += TVec.Count)
            {
                TVec.Store(VecMath.Exp<TVec, T>(TVec.Load(px + i)), py + i);
            }
        }
        return y;
    }

    /// <summary>Samples: an even grid over [low, 0], random points, −2^−k near 0, and the known
    /// worst floats; padded to a multiple of 16.</summary>
    private static double[] Samples(double low, int grid, int seed)
    {
        var random = new Random(seed);
        var samples = Enumerable.Range(0, grid + 1).Select(i => low * i / grid)
            .Concat(Enumerable.Range(0, grid / 4).Select(_ => low * random.NextDouble()))
            .Concat(Enumerable.Range(1, 60).Select(k => -Math.ScaleB(1, -k)))
            .Concat(KnownWorstFloats)
            .ToList();
        while (samples.Count % 16 != 0)
        {
            samples.Add(0);
        }
        return samples.ToArray();
    }

    [Theory, MemberData(nameof(KernelWidthsTypesAndEvaluations))]
    public void ErrorIsBelowTheHeadersBound(Width width, string dtype, Evaluation evaluation)
    {
        (double worstUlps, double worstX, int measured) = dtype == "float32" ? MeasureFloat(width, evaluation) : MeasureDouble(width, evaluation);
        output.WriteLine($"exp {width} {dtype} {evaluation}: max error {worstUlps:F3} ulp at x = {worstX:R} over {measured} samples");
        Assert.True(measured > 1_000_000, $"exp {width} {dtype} {evaluation}: only {measured} samples measured");
        Assert.True(worstUlps < ClaimedUlps,
            $"exp {width} {dtype} {evaluation}: {worstUlps:F3} ulp at x = {worstX:R}, not below the header's {ClaimedUlps} ulp");
    }

    /// <summary>float: error against Math.Exp in double (far more accurate than a float ulp),
    /// in ulps of the exact value's binade; x below ln(FLT_MIN) must give exactly 0.</summary>
    private static (double, double, int) MeasureFloat(Width width, Evaluation evaluation)
    {
        float[] x = Samples(-104, 1 << 21, seed: 7).Select(v => (float)v).ToArray();
        float[] y = Exp(width, x, evaluation);
        double worst = 0, worstX = double.NaN;
        int measured = 0;
        for (int i = 0; i < x.Length; i++)
        {
            double exact = Math.Exp(x[i]);
            if (exact < FloatMinNormal)
            {
                Assert.True(y[i] == 0, $"exp {width} float32 x={x[i]:R}: exact {exact:R} is below FLT_MIN but got {y[i]:R}, not 0");
                continue;
            }
            double ulps = Math.Abs(y[i] - exact) / Math.ScaleB(1.0, Math.ILogB(exact) - 23);
            if (ulps > worst)
            {
                (worst, worstX) = (ulps, x[i]);
            }
            measured++;
        }
        return (worst, worstX, measured);
    }

    /// <summary>double: error against a double-double exp (≈ 1e-30 relative), in ulps of the
    /// exact value's binade; x below ln(DBL_MIN) must give exactly 0.</summary>
    private static (double, double, int) MeasureDouble(Width width, Evaluation evaluation)
    {
        double[] x = Samples(-745, 1 << 20, seed: 11);
        double[] y = Exp(width, x, evaluation);
        double worst = 0, worstX = double.NaN;
        int measured = 0;
        for (int i = 0; i < x.Length; i++)
        {
            if (x[i] < LnDoubleMin)
            {
                Assert.True(y[i] == 0, $"exp {width} float64 x={x[i]:R}: below ln(DBL_MIN) but got {y[i]:R}, not 0");
                continue;
            }
            // Compare before the final scaling by 2^k, so that the reference's low part does not
            // underflow for results near DBL_MIN (y·2^−k is exact for a normal y).
            (double hi, double lo, int k) = DoubleDouble.Exp(x[i]);
            double ulps = Math.Abs((Math.ScaleB(y[i], -k) - hi) - lo) / Math.ScaleB(1.0, Math.ILogB(hi) - 52);
            if (ulps > worst)
            {
                (worst, worstX) = (ulps, x[i]);
            }
            measured++;
        }
        return (worst, worstX, measured);
    }

    /// <summary>
    /// Every float within 32 ulps of ln(FLT_MIN), every double within 32 ulps of ln(DBL_MIN): a
    /// result whose exact value is below the smallest normal number must be 0 (the header: "results
    /// below the smallest normal number are flushed to 0"), the others within the claimed ulps.
    /// </summary>
    public static TheoryData<Width> KernelWidths() => new(Cases.AllWidths.Where(w => w != Width.PublicApi));

    [Theory]
    [MemberData(nameof(KernelWidths))]
    public void Float32ResultsBelowTheSmallestNormalAreFlushedAtTheBoundary(Width width) =>
        Assert.Equal(65 * 16, CheckBoundary(width, (float)LnFloatMin, FloatMinNormal, x => Math.Exp(x), 23));

    [Theory, MemberData(nameof(KernelWidths))]
    public void Float64ResultsBelowTheSmallestNormalAreFlushedAtTheBoundary(Width width) =>
        Assert.Equal(65 * 16, CheckBoundary(width, LnDoubleMin, 2.2250738585072014e-308,
            x => { var (hi, lo, k) = DoubleDouble.Exp(x); return Math.ScaleB(hi + lo, k); }, 52));

    /// <summary>
    /// Every value within 32 ulps of ln(smallest normal), in 16 lanes each: a result whose exact
    /// value is below the smallest normal number must be 0 (the header: "results below the smallest
    /// normal number are flushed to 0"), the others within the claimed ulps.
    /// </summary>
    private static int CheckBoundary<T>(Width width, T lnMinNormal, double minNormal, Func<double, double> exact, int mantissaBits)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        T start = lnMinNormal;
        for (int i = 0; i < 32; i++)
        {
            start = T.BitDecrement(start);
        }
        var inputs = new List<T>();
        for (T v = start; inputs.Count < 65; v = T.BitIncrement(v))
        {
            inputs.Add(v);
        }
        T[] x = inputs.SelectMany(v => Enumerable.Repeat(v, 16)).ToArray();
        T[] y = Exp(width, x);
        for (int i = 0; i < x.Length; i++)
        {
            double xi = double.CreateTruncating(x[i]), yi = double.CreateTruncating(y[i]), e = exact(xi);
            string context = $"exp {width} {TestData.Name<T>()} x={xi:R} lane {i % 16}: exact {e:R}, got {yi:R}";
            if (e < minNormal)
            {
                Assert.True(yi == 0, context + ": below the smallest normal, must be 0");
            }
            else
            {
                Assert.True(Math.Abs(yi - e) <= ClaimedUlps * Math.ScaleB(1.0, Math.ILogB(e) - mantissaBits), context);
            }
        }
        return x.Length;
    }

    [Theory, MemberData(nameof(KernelWidthsAndTypes))]
    public void SpecialValues(Width width, string dtype)
    {
        if (dtype == "float32")
        {
            CheckSpecialValues(width, (float)LnFloatMin);
        }
        else
        {
            CheckSpecialValues(width, LnDoubleMin);
        }
    }

    private static void CheckSpecialValues<T>(Width width, T lnMinNormal)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        T belowMinNormal = lnMinNormal - T.CreateTruncating(0.01);
        (T X, T Expected, string What)[] cases =
        [
            (T.NaN, T.NaN, "NaN -> NaN"),
            (T.NegativeInfinity, T.Zero, "-inf -> 0"),
            (T.PositiveInfinity, T.PositiveInfinity, "+inf -> +inf"),
            (T.Zero, T.One, "0 -> 1 exactly"),
            (T.NegativeZero, T.One, "-0 -> 1 exactly"),
            (belowMinNormal, T.Zero, "just below ln(min normal) -> 0"),
            (T.CreateTruncating(-1000.0), T.Zero, "-1000 -> 0"),
            (T.CreateSaturating(double.MinValue), T.Zero, "most negative finite -> 0"),
        ];
        // Repeat each case across a full 16-lane block, so every lane of every width sees it.
        T[] x = cases.SelectMany(c => Enumerable.Repeat(c.X, 16)).ToArray();
        T[] y = Exp(width, x);
        for (int i = 0; i < x.Length; i++)
        {
            var (input, expected, what) = cases[i / 16];
            bool ok = T.IsNaN(expected) ? T.IsNaN(y[i]) : y[i] == expected;
            Assert.True(ok, $"exp {width} {TestData.Name<T>()} lane {i % 16}: {what}: exp({input}) gave {y[i]}");
        }
    }
}

/// <summary>
/// exp in double-double arithmetic (about 106 bits): x = k·ln2 + r with ln2 in three parts, then
/// the Taylor series of e^r to 27 terms. Only for references: slow and plain.
/// </summary>
internal static class DoubleDouble
{
    private const double Ln2A = 0.6931471805599453;        // ln2 in three doubles (from a 60-digit value)
    private const double Ln2B = 2.3190468138462996e-17;
    private const double Ln2C = 5.707708438416212e-34;

    /// <summary>e^x = (Hi + Lo)·2^K.</summary>
    public static (double Hi, double Lo, int K) Exp(double x)
    {
        double k = Math.Round(x / Ln2A);
        // r = x − k·ln2, carried as a double-double.
        double p = k * Ln2A, pError = Math.FusedMultiplyAdd(k, Ln2A, -p);
        (double, double) r = Add((x - p, 0), (-pError, 0));    // x − p is exact: x and p are within a factor 2 (or k = 0)
        double q = k * Ln2B, qError = Math.FusedMultiplyAdd(k, Ln2B, -q);
        r = Add(r, (-q, -qError));
        r = Add(r, (-k * Ln2C, 0));

        (double, double) sum = (1, 0), term = (1, 0);
        for (int n = 1; n <= 27; n++)
        {
            term = Divide(Multiply(term, r), n);
            sum = Add(sum, term);
        }
        return (sum.Item1, sum.Item2, (int)k);
    }

    private static (double, double) TwoSum(double a, double b)
    {
        double s = a + b, bb = s - a;
        return (s, (a - (s - bb)) + (b - bb));
    }

    private static (double, double) Add((double Hi, double Lo) a, (double Hi, double Lo) b)
    {
        (double s, double e) = TwoSum(a.Hi, b.Hi);
        e += a.Lo + b.Lo;
        return TwoSum(s, e);
    }

    private static (double, double) Multiply((double Hi, double Lo) a, (double Hi, double Lo) b)
    {
        double p = a.Hi * b.Hi;
        double e = Math.FusedMultiplyAdd(a.Hi, b.Hi, -p) + (a.Hi * b.Lo + a.Lo * b.Hi);
        return TwoSum(p, e);
    }

    private static (double, double) Divide((double Hi, double Lo) a, double b)
    {
        double q = a.Hi / b;
        double remainder = Math.FusedMultiplyAdd(-q, b, a.Hi) + a.Lo;
        return TwoSum(q, remainder / b);
    }
}
