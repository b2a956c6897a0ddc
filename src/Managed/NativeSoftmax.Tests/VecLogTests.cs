using NativeSoftmax.Simd;

namespace NativeSoftmax.Tests;

/// <summary>
/// VecLog.LogOnePlus, the lane-wise log(1 + x) of log Σ for rows across lanes, at every float64 width
/// (one lane, 128, 256 and 512 bits, each lane given its own input), against a reference
/// computed another way: log(u) + δ/u with u = 1 + x rounded and δ = x − (u − 1) its exact
/// rounding error (and x − x²/2 + x³/3 where u rounds to 1), within 3 ulp (the reference itself has up to about 1), over x log-uniform in
/// [1e-30, 1e300], both lanes, and at the edges: 0, the smallest subnormal, 2^−53, the m ≶ √2 cut,
/// 2^k − 1, the largest double; +∞ and NaN give NaN.
/// </summary>
public class VecLogTests
{
    private static double Reference(double x)
    {
        double u = 1 + x;
        if (u == 1)
        {
            return x - x * x / 2 + x * x * x / 3;
        }
        double delta = x - (u - 1); // exact (Sterbenz, or 0 for large x)
        return Math.Log(u) + delta / u;
    }

    private static void Check(double x, double y)
    {
        CheckAt<VecScalar<double>>(x, y);
        CheckAt<Vec128<double>>(x, y);
        CheckAt<Vec256<double>>(x, y);
        CheckAt<Vec512<double>>(x, y);
    }

    /// <summary>LogOnePlus at width <typeparamref name="TD"/> on lanes alternating x and y (x alone at one lane,
    /// then y alone).</summary>
    private static unsafe void CheckAt<TD>(double x, double y)
        where TD : struct, IVec<TD, double>
    {
        double* input = stackalloc double[TD.Count], got = stackalloc double[TD.Count];
        foreach (bool xFirst in TD.Count == 1 ? new[] { true, false } : new[] { true })
        {
            for (int i = 0; i < TD.Count; i++)
            {
                input[i] = (i % 2 == 0) == xFirst ? x : y;
            }
            TD.Store(VecLog.LogOnePlus(TD.Load(input)), got);
            for (int i = 0; i < TD.Count; i++)
            {
                double expected = Reference(input[i]);
                double ulp = Math.BitIncrement(Math.Abs(expected)) - Math.Abs(expected);
                Assert.True(Math.Abs(got[i] - expected) <= 3 * ulp,
                    $"{typeof(TD).Name} lane {i}: log1p({input[i]:R}): got {got[i]:R}, expected {expected:R} ({(got[i] - expected) / ulp:F2} ulp)");
            }
        }
    }

    [Fact]
    public void MatchesTheReferenceWithinThreeUlp()
    {
        var random = new Random(20261130);
        for (int k = 0; k < 200_000; k++)
        {
            Check(Math.Pow(10, -30 + 330 * random.NextDouble()), Math.Pow(10, -30 + 330 * random.NextDouble()));
        }
        for (int k = 0; k < 100_000; k++)
        {
            Check(3 * random.NextDouble(), random.Next(1, 20_000)); // S − 1 of short rows: a few classes
        }
    }

    [Fact]
    public void EdgesMatchTheReference()
    {
        double sqrt2Minus1 = Math.Sqrt(2) - 1;
        double[] edges =
        [
            0, double.Epsilon, 1e-300, Math.Pow(2, -53), Math.Pow(2, -52), 1e-10,
            Math.BitDecrement(sqrt2Minus1), sqrt2Minus1, Math.BitIncrement(sqrt2Minus1),
            1, 2, 3, 7, 255, Math.Pow(2, 52) - 1, Math.Pow(2, 53), 1e300, double.MaxValue,
        ];
        foreach (double x in edges)
        {
            Check(x, edges[edges.Length - 1 - Array.IndexOf(edges, x)]);
        }
    }

    [Fact]
    public unsafe void InfinityAndNaNGiveNaN()
    {
        InfinityAndNaNAt<VecScalar<double>>();
        InfinityAndNaNAt<Vec128<double>>();
        InfinityAndNaNAt<Vec256<double>>();
        InfinityAndNaNAt<Vec512<double>>();
    }

    private static unsafe void InfinityAndNaNAt<TD>()
        where TD : struct, IVec<TD, double>
    {
        double* values = stackalloc double[TD.Count];
        foreach (double special in new[] { double.PositiveInfinity, double.NaN })
        {
            for (int i = 0; i < TD.Count; i++)
            {
                values[i] = special;
            }
            TD.Store(VecLog.LogOnePlus(TD.Load(values)), values);
            for (int i = 0; i < TD.Count; i++)
            {
                Assert.True(double.IsNaN(values[i]), $"{typeof(TD).Name} lane {i}: log1p({special}) gave {values[i]}");
            }
        }
    }
}
