using System.Numerics;

namespace NativeSoftmax.Tests;

/// <summary>Comparisons that name what was compared when they fail.</summary>
internal static class Expect
{
    public static bool IsFloat<T>() => typeof(T) == typeof(float);

    /// <summary>|actual − expected| ≤ tolerance; NaN must meet NaN and an infinity the same infinity.</summary>
    public static void Close(double expected, double actual, double tolerance, string context, int row = -1, int col = -1)
    {
        bool ok = double.IsNaN(expected) ? double.IsNaN(actual)
            : double.IsInfinity(expected) ? actual == expected
            : Math.Abs(actual - expected) <= tolerance;
        if (!ok)
        {
            string at = row < 0 ? "" : col < 0 ? $" [{row}]" : $" [{row}, {col}]";
            Assert.Fail($"{context}{at}: expected {expected:R}, got {actual:R}, |diff| {Math.Abs(actual - expected):E3} > tolerance {tolerance:E3}");
        }
    }

    /// <summary>Every element of the matrix against the reference rows, with a per-element tolerance;
    /// returns the largest |diff| / tolerance seen (how much of the tolerance was used).</summary>
    public static double Rows<T>(Matrix<T> actual, double[][] expected, Func<int, int, double, double> tolerance, string context)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        Assert.True(expected.Length == actual.Rows, $"{context}: reference has {expected.Length} rows, output {actual.Rows}");
        double worst = 0;
        for (int r = 0; r < actual.Rows; r++)
        {
            for (int c = 0; c < actual.Cols; c++)
            {
                double e = expected[r][c], a = double.CreateTruncating(actual[r, c]), tol = tolerance(r, c, e);
                Close(e, a, tol, context, r, c);
                if (double.IsFinite(e) && tol > 0)
                {
                    worst = Math.Max(worst, Math.Abs(a - e) / tol);
                }
            }
        }
        actual.AssertPaddingIntact(context);
        return worst;
    }
}
