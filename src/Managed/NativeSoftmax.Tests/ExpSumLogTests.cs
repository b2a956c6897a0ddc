using NativeSoftmax.Kernels;

namespace NativeSoftmax.Tests;

/// <summary>
/// ExpSum's inline log1p (log Σ of every row, float32 and float64) against log1p from libm's log
/// in float64 (log u plus the rounding of u = 1 + x, (x − (u − 1))/u), over every binade of its
/// input from 2^-60 to 2^62 and around each reduction boundary (u near 2^k·√½ and 2^k).
/// </summary>
public class ExpSumLogTests
{
    /// <summary>The documented bound (2 ulp) plus the reference's own error (about 1 ulp: log's
    /// half ulp and the last addition's rounding).</summary>
    private const double ToleranceUlps = 3;

    private static double Reference(double x)
    {
        double u = 1 + x;
        return u == 1 ? x : Math.Log(u) + (x - (u - 1)) / u;
    }

    private static double Ulps(double value, double reference) =>
        Math.Abs(value - reference) / (Math.BitIncrement(reference) - reference);

    [Fact]
    public void WithinThreeUlpsOfLibmOverEveryBinade()
    {
        var random = new Random(6);
        double worst = 0, worstAt = 0;
        void Check(double x)
        {
            double u = Ulps(ExpSum.LogOnePlus(x), Reference(x));
            if (u > worst)
            {
                (worst, worstAt) = (u, x);
            }
        }
        for (int e = -60; e <= 62; e++)
        {
            for (int i = 0; i < 4000; i++)
            {
                Check(Math.ScaleB(1 + random.NextDouble(), e));
            }
        }
        for (int k = -1; k <= 62; k++)
        {
            foreach (double v in new[] { Math.Sqrt(0.5), 1.0, Math.Sqrt(2) })
            {
                double x = Math.ScaleB(v, k) - 1;
                for (int step = -4; step <= 4 && x > 0; step++)
                {
                    double y = x;
                    for (int s = 0; s < Math.Abs(step); s++)
                    {
                        y = step < 0 ? Math.BitDecrement(y) : Math.BitIncrement(y);
                    }
                    Check(y);
                }
            }
        }
        Assert.True(worst <= ToleranceUlps, $"log1p({worstAt:R}) is {worst:F2} ulp from the reference");
    }

    [Fact]
    public void SmallZeroAndNonFiniteInputs()
    {
        Assert.Equal(0.0, ExpSum.LogOnePlus(0.0));
        Assert.Equal(double.Epsilon, ExpSum.LogOnePlus(double.Epsilon));
        Assert.Equal(1e-17, ExpSum.LogOnePlus(1e-17));
        Assert.True(double.IsNaN(ExpSum.LogOnePlus(double.NaN)));
        Assert.Equal(double.PositiveInfinity, ExpSum.LogOnePlus(double.PositiveInfinity));
        Assert.Equal(Math.Log(1e300), ExpSum.LogOnePlus(1e300));
    }
}
