using System.Numerics;

namespace NativeSoftmax.Tests;

/// <summary>
/// Where the sum S = Σ exp(z − max) is split into its 1s and the rest (ExpSum, design.md "The
/// dominant class"): the loops split it only when S &lt; 2 and may give a larger total unsplit. Rows
/// whose S runs from 1 + 2^−30 to 3 in halvings of S − 1 (one maximum, the rest shared by the other
/// classes), and rows with two and three tied maxima: at every S the log-probability of the maximum
/// (−log S) and the hard-label loss and gradient at the maximum ((S − 1)/S, dominated by S − 1)
/// must come out to the library's relative accuracy (see <see cref="Tolerance{T}"/>), on both sides of 2, in place and not, on short rows and long.
/// </summary>
public class ExpSumSplitTests
{
    /// <summary>A short row at every width (below 2·Count), rows of the general loops, a row longer than a chunk.</summary>
    private static readonly int[] Lengths = [5, 9, 17, 100, 1000, 9000];

    /// <summary>Relative tolerance: the library's accuracy for sums (1e-6 in float32; 1e-13 in
    /// float64, where the block totals of a 9000-class row are added in float64 itself). A sum that
    /// left the 1s in where S − 1 is small would be off by about ulp(1)/(S − 1) relative:
    /// 2^−24·2^30 = 64 at the smallest S here in float32, 2^−53·2^30 ≈ 1e-7 in float64.</summary>
    private static double Tolerance<T>() => typeof(T) == typeof(float) ? 1e-6 : 1e-13;

    /// <summary>S − 1 for the rows with one maximum: 2^−30 … 2^−1, then just below 1, 1, and 2.</summary>
    private static readonly double[] Rest = [.. Enumerable.Range(1, 30).Select(k => Math.ScaleB(1.0, -k)), 1 - 1e-3, 1.0, 1 + 1e-3, 2.0];

    private static double Ulp<T>(double exact) =>
        Math.ScaleB(1.0, Math.ILogB(exact) - (typeof(T) == typeof(float) ? 23 : 52));

    /// <summary>Row r: the maximum (0) at column 0 — and at columns 1, 2 for the tied rows — the
    /// other classes each ln(rest / others).</summary>
    private static Matrix<T> Logits<T>(int cols, out int[] ties)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int[] tieCounts = [.. Enumerable.Repeat(1, Rest.Length), 2, 3];
        double[] rest = [.. Rest, 1e-6, 1e-6];
        ties = tieCounts;
        return new Matrix<T>(tieCounts.Length, cols, cols).Fill((r, c) =>
            c < tieCounts[r] ? 0 : Math.Log(rest[r] / (cols - tieCounts[r])));
    }

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void LogProbabilityOfTheMaximumOnBothSidesOfTheSplit(Width width, string dtype)
    {
        int count = dtype == "float32" ? LogSoftmax<float>(width) : LogSoftmax<double>(width);
        Assert.Equal(Lengths.Length * (Rest.Length + 2) * 2, count);
    }

    private static int LogSoftmax<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int count = 0;
        foreach (int cols in Lengths)
        {
            Matrix<T> logits = Logits<T>(cols, out _);
            double[][] expected = logits.RowsAsDouble().Select(Reference.LogSoftmax).ToArray();
            foreach (bool inPlace in new[] { false, true })
            {
                Matrix<T> result = inPlace ? logits.Clone() : new Matrix<T>(logits.Rows, cols, cols);
                Ops.LogSoftmax(width, inPlace ? result : logits, result);
                for (int r = 0; r < logits.Rows; r++, count++)
                {
                    double exact = expected[r][0], got = double.CreateTruncating(result[r, 0]);
                    Assert.True(Math.Abs(got - exact) <= Tolerance<T>() * Math.Abs(exact),
                        $"log_softmax width={width} dtype={TestData.Name<T>()} cols={cols} row {r} in place={inPlace}: " +
                        $"got {got:R}, exact {exact:R} ({Math.Abs(got - exact) / Ulp<T>(exact):F1} ulp)");
                }
            }
        }
        return count;
    }

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void HardLabelLossAndGradientAtTheMaximumOnBothSidesOfTheSplit(Width width, string dtype)
    {
        int count = dtype == "float32" ? HardLabel<float>(width) : HardLabel<double>(width);
        Assert.Equal(Lengths.Length * (Rest.Length + 2), count);
    }

    private static int HardLabel<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int count = 0;
        var options = new CrossEntropyOptions { Reduction = Reduction.None };
        foreach (int cols in Lengths)
        {
            Matrix<T> logits = Logits<T>(cols, out _);
            long[] labels = new long[logits.Rows]; // every label at column 0, a maximum
            var loss = new T[logits.Rows];
            var grad = new Matrix<T>(logits.Rows, cols, cols);
            Ops.CrossEntropy(width, logits, labels, null, options, loss, grad);
            Reference.LossResult expected = Reference.HardCrossEntropy(logits.RowsAsDouble(), labels, null, options);
            for (int r = 0; r < logits.Rows; r++, count++)
            {
                string context = $"cross_entropy width={width} dtype={TestData.Name<T>()} cols={cols} row {r}";
                foreach ((double exact, T value, string what) in new[] { (expected.RowLosses[r], loss[r], "loss"), (expected.Grad[r][0], grad[r, 0], "gradient at the label") })
                {
                    double got = double.CreateTruncating(value);
                    Assert.True(Math.Abs(got - exact) <= Tolerance<T>() * Math.Abs(exact),
                        $"{context} {what}: got {got:R}, exact {exact:R} ({Math.Abs(got - exact) / Ulp<T>(exact):F1} ulp)");
                }
            }
        }
        return count;
    }
}
