using NativeSoftmax.Kernels;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Tests;

/// <summary>
/// Rows long enough to go by chunks of columns (<see cref="LongRow{TVec, T}"/>): values against
/// the float64 reference at the chunk boundaries and with the non-finite cases that a chunk can
/// hold alone (a chunk of −∞ only, NaN or +∞ in one chunk, a dominant class in a later chunk).
/// </summary>
public class LongRowTests
{
    private const int Chunk = (int)LongRow<Vec256<float>, float>.ChunkLength;

    /// <summary>FLT_MIN, the smallest normal float.</summary>
    private const double FloatMin = 1.1754943508222875e-38;

    /// <summary>Lengths: the shortest long row, one element less (not long), 3 chunks and a remainder.</summary>
    private static readonly int[] Lengths = [2 * Chunk - 1, 2 * Chunk, 3 * Chunk + 5];

    public enum Pattern
    {
        Random,
        FirstChunkAllNegativeInfinity,
        LaterChunkHoldsTheMaximum,
        LaterChunkMaximumOverflowsEarlierShift,
        LabelIsAnEarlierChunksMaximum,
        DominantClassInLastChunk,
        NaNInMiddleChunk,
        NaNInAChunkOfNegativeInfinity,
        PositiveInfinityInLastChunk,
        AllNegativeInfinity,
    }

    public static TheoryData<Width, Pattern> WidthsAndPatterns()
    {
        var data = new TheoryData<Width, Pattern>();
        foreach (Width width in Cases.AllWidths)
        {
            foreach (Pattern pattern in Enum.GetValues<Pattern>())
            {
                data.Add(width, pattern);
            }
        }
        return data;
    }

    [Theory, MemberData(nameof(WidthsAndPatterns))]
    public void SoftmaxAndLogSoftmaxMatchTheReference(Width width, Pattern pattern)
    {
        foreach (int cols in Lengths)
        {
            Matrix<float> logits = Make(pattern, cols);
            double[] z = Enumerable.Range(0, cols).Select(j => (double)logits[0, j]).ToArray();
            double[] expectedSoftmax = Reference.Softmax(z);
            double[] expectedLog = Reference.LogSoftmax(z);
            string context = $"{pattern} cols={cols} width={width}";

            var probabilities = new Matrix<float>(1, cols, cols);
            Ops.Softmax(width, logits, probabilities);
            var logProbabilities = new Matrix<float>(1, cols, cols);
            Ops.LogSoftmax(width, logits, logProbabilities);
            var inPlace = new Matrix<float>(1, cols, cols).Fill((r, c) => logits[r, c]);
            Ops.Softmax(width, inPlace, inPlace);

            for (int j = 0; j < cols; j++)
            {
                double exact = expectedSoftmax[j], exactLog = expectedLog[j];
                if (double.IsNaN(exact))
                {
                    Assert.True(float.IsNaN(probabilities[0, j]) && float.IsNaN(logProbabilities[0, j]),
                        $"{context}: element {j} is {probabilities[0, j]} / {logProbabilities[0, j]}, expected NaN");
                    continue;
                }
                // The header's bounds: softmax 1e-6 relative (0 below FLT_MIN); log_softmax
                // 2e-6·(1 + |exact|), and for the dominant class (|exact| tiny) 1e-6 relative too.
                double bound = exact < FloatMin ? FloatMin : 1e-6 * exact;
                Assert.True(Math.Abs(probabilities[0, j] - exact) <= bound,
                    $"{context}: softmax[{j}] = {probabilities[0, j]:R}, exact {exact:R}");
                Assert.True(probabilities[0, j] == inPlace[0, j], $"{context}: in place differs at {j}");
                double logBound = double.IsInfinity(exactLog) ? 0 : Math.Min(2e-6 * (1 + Math.Abs(exactLog)), Math.Max(1e-6 * Math.Abs(exactLog), FloatMin));
                Assert.True(exactLog == logProbabilities[0, j] || Math.Abs(logProbabilities[0, j] - exactLog) <= logBound,
                    $"{context}: log_softmax[{j}] = {logProbabilities[0, j]:R}, exact {exactLog:R}");
            }
        }
    }

    /// <summary>Hard-label cross-entropy on the same rows (<see cref="ChunkedRowLoop{TVec, T}"/>): the
    /// loss and gradient against the float64 reference with the header's bounds, label smoothing
    /// on and off (off for rows with −∞), the label at the row's maximum (a dominant class, where 1 − o_t must not round
    /// away) and in the first chunk (a chunk of −∞ when the pattern has one), out of place and in place.</summary>
    [Theory, MemberData(nameof(WidthsAndPatterns))]
    public void CrossEntropyMatchesTheReference(Width width, Pattern pattern)
    {
        foreach (int cols in Lengths)
        {
            Matrix<float> logits = Make(pattern, cols);
            double[][] z = logits.RowsAsDouble();
            int argMax = Enumerable.Range(0, cols).MaxBy(j => z[0][j]);
            foreach (long label in new long[] { argMax, 5 })
            {
                // With smoothing a −∞ logit makes the loss +∞ (as PyTorch's), which the reference does not model.
                bool hasNegativeInfinity = z[0].Any(double.IsNegativeInfinity);
                foreach (double smoothing in hasNegativeInfinity ? new[] { 0.0 } : new[] { 0.0, 0.1 })
                {
                    var options = new CrossEntropyOptions { Reduction = Reduction.None, LabelSmoothing = smoothing };
                    long[] target = [label];
                    Reference.LossResult expected = Reference.HardCrossEntropy(z, target, null, options);
                    string context = $"cross_entropy {pattern} cols={cols} width={width} label={label} smoothing={smoothing}";
                    float[] loss = [float.NaN];
                    var grad = new Matrix<float>(1, cols, cols);
                    Ops.CrossEntropy(width, logits, target, null, options, loss, grad);
                    // The header: loss within 2e-6·Σ_j |y_j|·(1 + |lse − z_j|); gradient within 1e-6·|s|·Σ|y_j|.
                    Expect.Close(expected.RowLosses[0], loss[0], 2e-6 * (expected.TargetAbsMass[0] + expected.RowLossScale[0]), context + " loss", 0);
                    Expect.Rows(grad, expected.Grad, (_, _, _) => 1e-6 * Math.Abs(expected.Scale) * expected.TargetAbsMass[0], context + " grad");
                    var inPlace = new Matrix<float>(1, cols, cols).Fill((r, c) => logits[r, c]);
                    float[] inPlaceLoss = [float.NaN];
                    Ops.CrossEntropy(width, inPlace, target, null, options, inPlaceLoss, inPlace);
                    Assert.True(inPlaceLoss[0].Equals(loss[0]), $"{context}: in place loss {inPlaceLoss[0]:R}, out of place {loss[0]:R}");
                    for (int j = 0; j < cols; j++)
                    {
                        Assert.True(inPlace[0, j].Equals(grad[0, j]), $"{context}: in place grad[{j}] = {inPlace[0, j]:R}, out of place {grad[0, j]:R}");
                    }
                }
            }
        }
    }

    /// <summary>
    /// Label smoothing with class weights on the same rows: the smoothing term Σ_j w_j·(lse − z_j)
    /// comes from the chunks' own gaps folded across chunks (<see cref="GapStatistics"/>), and the
    /// gradient subtracts the weights chunk by chunk. Against the float64 reference where the loss is
    /// finite; a −∞ logit gives the loss +∞ (PyTorch's w_j·∞), or NaN when its weight is 0 (0·∞),
    /// with the gradient still the reference's; out of place and in place give the same bits.
    /// </summary>
    [Theory, MemberData(nameof(WidthsAndPatterns))]
    public void SmoothedWeightedCrossEntropyMatchesTheReference(Width width, Pattern pattern)
    {
        foreach (int cols in Lengths)
        {
            Matrix<float> logits = Make(pattern, cols);
            double[][] z = logits.RowsAsDouble();
            bool hasNegativeInfinity = z[0].Any(double.IsNegativeInfinity);
            bool nonFinite = z[0].Any(v => double.IsNaN(v) || double.IsPositiveInfinity(v)) || z[0].All(double.IsNegativeInfinity);
            int argMax = Enumerable.Range(0, cols).MaxBy(j => z[0][j]);
            // Weights from 0.25 to 2; then either one of them 0 where a logit is −∞, or (rows without
            // −∞, whose w_j·∞ would mix signs) every eleventh negated.
            string[] weightings = nonFinite ? ["positive"] : hasNegativeInfinity ? ["positive", "zero at -inf"] : ["positive", "some negative"];
            foreach (string weighting in weightings)
            {
                bool zeroWeightAtNegativeInfinity = weighting == "zero at -inf";
                float[] weight = [.. Enumerable.Range(0, cols).Select(j => 0.25f * (1 + (j * 5 % 8)) * (weighting == "some negative" && j % 11 == 0 ? -1 : 1))];
                if (zeroWeightAtNegativeInfinity)
                {
                    weight[Array.FindIndex(z[0], double.IsNegativeInfinity)] = 0;
                }
                double[] w = [.. weight.Select(v => (double)v)];
                foreach (long label in new long[] { argMax, cols - 2 })
                {
                    var options = new CrossEntropyOptions { Reduction = Reduction.None, LabelSmoothing = 0.1 };
                    long[] target = [label];
                    Reference.LossResult expected = Reference.HardCrossEntropy(z, target, w, options);
                    string context = $"smoothed weighted cross_entropy {pattern} cols={cols} width={width} label={label} weights {weighting}";
                    float[] loss = [0];
                    var grad = new Matrix<float>(1, cols, cols);
                    Ops.CrossEntropy(width, logits, target, weight, options, loss, grad);
                    if (nonFinite)
                    {
                        Assert.True(float.IsNaN(loss[0]), $"{context}: loss {loss[0]:R}, expected NaN");
                        Assert.True(Enumerable.Range(0, cols).All(j => float.IsNaN(grad[0, j])), $"{context}: a gradient element is not NaN");
                    }
                    else
                    {
                        if (zeroWeightAtNegativeInfinity)
                        {
                            Assert.True(float.IsNaN(loss[0]), $"{context}: loss {loss[0]:R}, expected NaN (0·∞)");
                        }
                        else if (hasNegativeInfinity)
                        {
                            Assert.True(float.IsPositiveInfinity(loss[0]), $"{context}: loss {loss[0]:R}, expected +∞");
                        }
                        else
                        {
                            Expect.Close(expected.RowLosses[0], loss[0], 2e-6 * (expected.TargetAbsMass[0] + expected.RowLossScale[0]), context + " loss", 0);
                        }
                        Expect.Rows(grad, expected.Grad, (_, _, _) => 1e-6 * Math.Abs(expected.Scale) * expected.TargetAbsMass[0], context + " grad");
                    }
                    var inPlace = new Matrix<float>(1, cols, cols).Fill((r, c) => logits[r, c]);
                    float[] inPlaceLoss = [0];
                    Ops.CrossEntropy(width, inPlace, target, weight, options, inPlaceLoss, inPlace);
                    Assert.True(inPlaceLoss[0].Equals(loss[0]), $"{context}: in place loss {inPlaceLoss[0]:R}, out of place {loss[0]:R}");
                    for (int j = 0; j < cols; j++)
                    {
                        Assert.True(inPlace[0, j].Equals(grad[0, j]), $"{context}: in place grad[{j}] = {inPlace[0, j]:R}, out of place {grad[0, j]:R}");
                    }
                }
            }
        }
    }

    private static Matrix<float> Make(Pattern pattern, int cols)
    {
        Matrix<float> logits = TestData.Uniform<float>(997_000 + cols, 1, cols, cols, -20, 20);
        switch (pattern)
        {
            case Pattern.FirstChunkAllNegativeInfinity:
                for (int j = 0; j < Chunk; j++)
                {
                    logits[0, j] = float.NegativeInfinity;
                }
                break;
            case Pattern.LaterChunkHoldsTheMaximum:
                logits[0, 10] = 30; // the first chunk's maximum, then a larger one in the last chunk
                logits[0, cols - 3] = 45;
                break;
            case Pattern.LaterChunkMaximumOverflowsEarlierShift:
                logits[0, cols - 3] = 200; // exp(z − the first chunk's maximum) would overflow float32
                break;
            case Pattern.LabelIsAnEarlierChunksMaximum:
                // Label 5 is the first chunk's maximum, e^−1 below the row's: its exponential relative
                // to its chunk (1) must be rescaled to the row's maximum (e^−1) in the gradient.
                for (int j = 0; j < cols; j++)
                {
                    logits[0, j] = -30;
                }
                logits[0, 5] = 0;
                logits[0, Chunk + 3] = 1;
                break;
            case Pattern.DominantClassInLastChunk:
                logits[0, cols - 1] = 60; // every other probability below e^−40
                break;
            case Pattern.NaNInMiddleChunk:
                logits[0, Chunk + 7] = float.NaN;
                break;
            case Pattern.NaNInAChunkOfNegativeInfinity:
                // The chunk's maximum can come out −∞ (MAXPS drops a NaN): the NaN must still reach the row.
                for (int j = Chunk; j < Math.Min(cols, 2 * Chunk); j++)
                {
                    logits[0, j] = float.NegativeInfinity;
                }
                logits[0, Chunk + 7] = float.NaN;
                break;
            case Pattern.PositiveInfinityInLastChunk:
                logits[0, cols - 2] = float.PositiveInfinity;
                break;
            case Pattern.AllNegativeInfinity:
                for (int j = 0; j < cols; j++)
                {
                    logits[0, j] = float.NegativeInfinity;
                }
                break;
        }
        return logits;
    }
}
