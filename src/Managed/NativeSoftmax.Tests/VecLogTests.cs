using System.Runtime.Intrinsics;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Tests;

/// <summary>
/// VecLog.LogOnePlus, the two-lane log(1 + x) of log Σ for rows across lanes, against a reference
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
        Vector128<double> got = VecLog.LogOnePlus(Vector128.Create(x, y));
        foreach ((double input, double result) in new[] { (x, got.GetElement(0)), (y, got.GetElement(1)) })
        {
            double expected = Reference(input);
            double ulp = Math.BitIncrement(Math.Abs(expected)) - Math.Abs(expected);
            Assert.True(Math.Abs(result - expected) <= 3 * ulp,
                $"log1p({input:R}): got {result:R}, expected {expected:R} ({(result - expected) / ulp:F2} ulp)");
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
    public void InfinityAndNaNGiveNaN()
    {
        Vector128<double> got = VecLog.LogOnePlus(Vector128.Create(double.PositiveInfinity, double.NaN));
        Assert.True(double.IsNaN(got.GetElement(0)) && double.IsNaN(got.GetElement(1)), $"got {got}");
    }
}
