using System.Numerics;
using Xunit.Abstractions;

namespace NativeSoftmax.Tests;

/// <summary>
/// A dominant class: one logit so far above the others that exp(z_j − max) sums to less than an
/// ulp of 1 (20 above in float32, 40 in float64). Its log-probability, its hard-label and
/// soft-target loss, its gradient o_t − 1 and its Jacobian diagonal o − o² are all tiny, about
/// Σ_{j≠t} exp(z_j − max); each must come out within a few ulp of the exact value (a sum in the
/// working precision gives 0). At every width, on rows that take the short-row path and rows that
/// take the general loops.
/// </summary>
public class DominantClassTests(ITestOutputHelper output)
{
    /// <summary>On both sides of every width's short-row range (Count ≤ n &lt; 2·Count).</summary>
    private static readonly int[] Lengths = [2, 3, 5, 8, 9, 16, 17, 31, 33, 100];

    /// <summary>"A few ulp" of relative accuracy at the dominant class.</summary>
    private const double Ulps = 4;

    private static double Ulp<T>(double exact) =>
        Math.ScaleB(1.0, Math.ILogB(exact) - (typeof(T) == typeof(float) ? 23 : 52));

    /// <summary>Rows of each length with the dominant class at the start, middle and end; the
    /// other logits 0, or spread over [−1.5, 0].</summary>
    private static IEnumerable<(Matrix<T> Logits, int[] Dominant, string Context)> Rows<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        double dominant = typeof(T) == typeof(float) ? 20 : 40;
        foreach (int cols in Lengths)
        {
            int[] positions = [0, cols / 2, cols - 1];
            var logits = new Matrix<T>(2 * positions.Length, cols, cols + 1)
                .Fill((r, c) => c == positions[r % positions.Length] ? dominant : r < positions.Length ? 0 : -0.5 * (c % 4));
            int[] dominantAt = [.. positions, .. positions];
            yield return (logits, dominantAt, $"width={width} dtype={TestData.Name<T>()} cols={cols} dominant logit {dominant}");
        }
    }

    private static void WithinUlps<T>(double exact, T got, string context)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        double g = double.CreateTruncating(got);
        Assert.True(Math.Abs(g - exact) <= Ulps * Ulp<T>(exact),
            $"{context}: got {g:R}, exact {exact:R}: {Math.Abs(g - exact) / Ulp<T>(exact):F2} ulp, more than {Ulps}");
    }

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void LogSoftmaxOfTheDominantClass(Width width, string dtype)
    {
        int count = dtype == "float32" ? LogSoftmax<float>(width) : LogSoftmax<double>(width);
        Assert.Equal(Lengths.Length * 6, count);
    }

    private static int LogSoftmax<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int count = 0;
        double unit = Expect.IsFloat<T>() ? 2e-6 : 1e-15;
        foreach (var (logits, dominant, context) in Rows<T>(width))
        {
            var result = new Matrix<T>(logits.Rows, logits.Cols, logits.Cols);
            Ops.LogSoftmax(width, logits, result);
            double[][] expected = logits.RowsAsDouble().Select(Reference.LogSoftmax).ToArray();
            Expect.Rows(result, expected, (_, _, e) => unit * (1 + Math.Abs(e)), "log_softmax " + context);
            for (int r = 0; r < logits.Rows; r++, count++)
            {
                WithinUlps(expected[r][dominant[r]], result[r, dominant[r]], $"log_softmax {context} row {r}, at the dominant class");
            }
        }
        return count;
    }

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void HardLabelLossAndGradientOfTheDominantClass(Width width, string dtype)
    {
        int count = dtype == "float32" ? HardLabel<float>(width) : HardLabel<double>(width);
        Assert.Equal(Lengths.Length * 6 * 2, count);
    }

    private static int HardLabel<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int count = 0;
        var options = new CrossEntropyOptions { Reduction = Reduction.None };
        foreach (var (logits, dominant, context) in Rows<T>(width))
        {
            foreach (T[]? weight in new[] { null, TestData.Vector<T>(logits.Cols, logits.Cols, 0.5, 2) })
            {
                long[] labels = dominant.Select(p => (long)p).ToArray();
                var loss = new T[logits.Rows];
                var grad = new Matrix<T>(logits.Rows, logits.Cols, logits.Cols);
                Ops.CrossEntropy(width, logits, labels, weight, options, loss, grad);
                Reference.LossResult expected = Reference.HardCrossEntropy(logits.RowsAsDouble(), labels, weight?.AsDouble(), options);
                string what = $"cross_entropy {context} weights={(weight is null ? "none" : "random")}";
                for (int r = 0; r < logits.Rows; r++, count++)
                {
                    WithinUlps(expected.RowLosses[r], loss[r], $"{what} row {r}: loss");
                    WithinUlps(expected.Grad[r][dominant[r]], grad[r, dominant[r]], $"{what} row {r}: gradient at the label");
                }
                double unit = Expect.IsFloat<T>() ? 1e-6 : 1e-14;
                Expect.Rows(grad, expected.Grad, (r, _, e) => unit * (expected.TargetAbsMass[r] + Math.Abs(e)), what + " gradient");
            }
        }
        return count;
    }

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void SoftTargetLossAndGradientOfTheDominantClass(Width width, string dtype)
    {
        int count = dtype == "float32" ? SoftTarget<float>(width) : SoftTarget<double>(width);
        Assert.Equal(Lengths.Length * 6, count);
    }

    private static int SoftTarget<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int count = 0;
        var options = new CrossEntropyOptions { Reduction = Reduction.None };
        foreach (var (logits, dominant, context) in Rows<T>(width))
        {
            // All the target's mass on the dominant class.
            var target = new Matrix<T>(logits.Rows, logits.Cols, logits.Cols).Fill((r, c) => c == dominant[r] ? 1 : 0);
            var loss = new T[logits.Rows];
            var grad = new Matrix<T>(logits.Rows, logits.Cols, logits.Cols);
            Ops.SoftCrossEntropy(width, logits, target, null, options, loss, grad);
            Reference.LossResult expected = Reference.SoftCrossEntropy(logits.RowsAsDouble(), target.RowsAsDouble(), null, options);
            for (int r = 0; r < logits.Rows; r++, count++)
            {
                WithinUlps(expected.RowLosses[r], loss[r], $"cross_entropy_soft {context} row {r}: loss");
                WithinUlps(expected.Grad[r][dominant[r]], grad[r, dominant[r]], $"cross_entropy_soft {context} row {r}: gradient at the target");
            }
            double unit = Expect.IsFloat<T>() ? 1e-6 : 1e-14;
            Expect.Rows(grad, expected.Grad, (r, _, e) => unit * (expected.TargetAbsMass[r] + Math.Abs(e)), $"cross_entropy_soft {context} gradient");
        }
        return count;
    }

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void JacobianDiagonalOfTheDominantClass(Width width, string dtype)
    {
        int count = dtype == "float32" ? Jacobian<float>(width) : Jacobian<double>(width);
        Assert.Equal(Lengths.Length * 6, count);
    }

    private static int Jacobian<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int count = 0;
        foreach (var (logits, dominant, context) in Rows<T>(width))
        {
            for (int r = 0; r < logits.Rows; r++, count++)
            {
                T[] row = Enumerable.Range(0, logits.Cols).Select(c => logits[r, c]).ToArray();
                var jacobian = new Matrix<T>(logits.Cols, logits.Cols, logits.Cols);
                Ops.Jacobian(width, row, jacobian);
                int p = dominant[r];
                WithinUlps(Reference.Jacobian(row.AsDouble())[p, p], jacobian[p, p], $"softmax_jacobian {context} row {r}: J[{p},{p}]");
            }
        }
        return count;
    }

    /// <summary>The issue's example, exactly: float32 log_softmax([20, 0]) = [−2.0611537e-9, −20.000000002].</summary>
    [Theory, MemberData(nameof(ExpAccuracyTests.KernelWidths), MemberType = typeof(ExpAccuracyTests))]
    public void LogSoftmaxOfTwentyAndZero(Width width)
    {
        var logits = new Matrix<float>(1, 2, 2).Fill((_, c) => c == 0 ? 20 : 0);
        var result = new Matrix<float>(1, 2, 2);
        Ops.LogSoftmax(width, logits, result);
        output.WriteLine($"{width}: log_softmax([20, 0]) = [{result[0, 0]:R}, {result[0, 1]:R}]");
        Assert.Equal(-2.0611537e-09f, result[0, 0]);
        Assert.Equal(-20.0f, result[0, 1]); // −20.000000002 rounded to float
    }
}
