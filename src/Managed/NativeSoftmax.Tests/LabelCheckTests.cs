namespace NativeSoftmax.Tests;

/// <summary>
/// The hard-label check with ignore_index inside [0, cols) as well as outside it: the check counts
/// labels in range and labels equal to ignore_index, and the two cases combine the counts
/// differently (for the error and for the mean's divisor).
/// </summary>
public class LabelCheckTests
{
    private const int Rows = 4, Cols = 5;

    private static double[] Logits() => TestData.Uniform<double>(11, Rows, Cols, Cols, -3, 3).Span.ToArray();

    /// <summary>lse(z_r) − z_r[t], in float64 from the definition.</summary>
    private static double RowLoss(double[] logits, int r, long t)
    {
        double max = double.NegativeInfinity;
        for (int j = 0; j < Cols; j++)
        {
            max = Math.Max(max, logits[r * Cols + j]);
        }
        double sum = 0;
        for (int j = 0; j < Cols; j++)
        {
            sum += Math.Exp(logits[r * Cols + j] - max);
        }
        return max + Math.Log(sum) - logits[r * Cols + t];
    }

    [Theory]
    [InlineData(2L, 5L)]    // ignore_index in range: a label of cols is still bad
    [InlineData(2L, -1L)]
    [InlineData(2L, -100L)] // the default ignore_index is not ignored when another one is set
    [InlineData(0L, 99L)]
    [InlineData(-100L, 5L)]
    [InlineData(7L, 6L)]    // ignore_index beyond cols
    public void BadLabelThrowsAndWritesNothingWhateverIgnoreIndex(long ignoreIndex, long badLabel)
    {
        foreach (bool weighted in new[] { false, true })
        {
            foreach (Reduction reduction in Enum.GetValues<Reduction>())
            {
                double[] loss = Enumerable.Repeat(Matrix<double>.Sentinel, Rows).ToArray();
                double[] grad = Enumerable.Repeat(Matrix<double>.Sentinel, Rows * Cols).ToArray();
                long[] labels = [ignoreIndex, 4, badLabel, 3]; // one ignored row: a check that adds the two counts whatever ignore_index is would pass this
                double[]? weight = weighted ? [1, 2, 3, 4, 5] : null;
                var options = new CrossEntropyOptions { Reduction = reduction, IgnoreIndex = ignoreIndex };
                var e = Assert.Throws<ArgumentOutOfRangeException>(() =>
                    SoftmaxPrimitives.CrossEntropy<double>(Rows, Cols, Logits(), Cols, labels, weight, loss, grad, Cols, options));
                Assert.Contains($"target[2] = {badLabel}", e.Message);
                Assert.True(loss.All(v => v == Matrix<double>.Sentinel), $"loss written (ignore_index {ignoreIndex}, label {badLabel})");
                Assert.True(grad.All(v => v == Matrix<double>.Sentinel), $"grad written (ignore_index {ignoreIndex}, label {badLabel})");
            }
        }
    }

    [Fact]
    public void MessageNamesTheFirstBadRow()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => SoftmaxPrimitives.CrossEntropy<double>(Rows, Cols, Logits(), Cols,
            [0, 7, -5, 9], null, new double[1], new double[Rows * Cols], Cols, CrossEntropyOptions.Default));
        Assert.Contains("target[1] = 7", e.Message);
    }

    [Theory]
    [InlineData(2L)]    // inside [0, cols): those labels are in range and still left out of the mean
    [InlineData(-100L)]
    [InlineData(9L)]
    public void MeanDividesByTheRowsNotIgnored(long ignoreIndex)
    {
        double[] logits = Logits();
        long[] labels = [ignoreIndex, 4, 0, ignoreIndex];
        double expected = (RowLoss(logits, 1, 4) + RowLoss(logits, 2, 0)) / 2;
        double[] loss = [Matrix<double>.Sentinel];
        SoftmaxPrimitives.CrossEntropy<double>(Rows, Cols, logits, Cols, labels, null, loss, default, 0,
            new CrossEntropyOptions { Reduction = Reduction.Mean, IgnoreIndex = ignoreIndex });
        Assert.Equal(expected, loss[0], 1e-12);

        double[] weight = [1, 2, 3, 4, 5];
        double weightedExpected = (5 * RowLoss(logits, 1, 4) + 1 * RowLoss(logits, 2, 0)) / 6;
        SoftmaxPrimitives.CrossEntropy<double>(Rows, Cols, logits, Cols, labels, weight, loss, default, 0,
            new CrossEntropyOptions { Reduction = Reduction.Mean, IgnoreIndex = ignoreIndex });
        Assert.Equal(weightedExpected, loss[0], 1e-12);
    }
}
