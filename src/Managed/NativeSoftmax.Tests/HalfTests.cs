using NativeSoftmax.Operations;

namespace NativeSoftmax.Tests;

/// <summary>
/// <see cref="Half"/> through float: every SoftmaxPrimitives operation on Half gives exactly the
/// float result of the widened inputs rounded once to Half, which is within the float32 tolerance
/// plus one Half ulp of the float64 reference; Half arguments are validated as float ones (nothing
/// written on failure), in place works, and a Half result below the smallest normal Half is 0.
/// </summary>
public class HalfTests
{
    private const int Rows = 3;

    private static readonly int[] Lengths = [1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 64, 65, 1000];

    /// <summary>One ulp of the Half nearest x: 2^(e − 10) in the binade 2^e; below the smallest
    /// normal Half, 2^−14 itself (such results are flushed to 0).</summary>
    private static double HalfUlp(double x)
    {
        double magnitude = Math.Abs(x);
        return magnitude < Math.Pow(2, -14) ? Math.Pow(2, -14) : Math.Pow(2, Math.Floor(Math.Log2(magnitude)) - 10);
    }

    private static Matrix<float> Widened(Matrix<Half> half) =>
        new Matrix<float>(half.Rows, half.Cols, half.Ld).Fill((r, c) => (double)half[r, c]);

    private static Matrix<Half> HalfMatrix(int seed, int rows, int cols, int ld, double low, double high)
    {
        double[][] values = TestData.Uniform<double>(seed, rows, cols, cols, low, high).RowsAsDouble();
        return new Matrix<Half>(rows, cols, ld).Fill((r, c) => values[r][c]);
    }

    /// <summary>Each Half result is bit for bit the float result rounded to Half (NaN where it is NaN).</summary>
    private static void AssertRoundedOnce(Matrix<Half> half, Matrix<float> single, string context)
    {
        for (int r = 0; r < half.Rows; r++)
        {
            for (int c = 0; c < half.Cols; c++)
            {
                Half expected = (Half)single[r, c];
                if (Half.IsSubnormal(expected))
                {
                    expected = Half.IsNegative(expected) ? Half.NegativeZero : Half.Zero; // the flush rule of 16-bit outputs
                }
                bool same = Half.IsNaN(expected) ? Half.IsNaN(half[r, c])
                    : BitConverter.HalfToInt16Bits(expected) == BitConverter.HalfToInt16Bits(half[r, c]);
                Assert.True(same, $"{context} [{r}, {c}]: Half result {half[r, c]}, the float result {single[r, c]:R} rounds to {expected}");
            }
        }
        half.AssertPaddingIntact(context);
    }

    [Fact]
    public void SoftmaxAndLogSoftmaxAreTheFloatResultsRoundedOnce()
    {
        foreach (bool isLog in new[] { false, true })
        {
            foreach (int cols in Lengths)
            {
                int seed = 1_100_000 + cols;
                string context = $"{(isLog ? "log_softmax" : "softmax")} Half cols={cols} rows={Rows} seed={seed}";
                Matrix<Half> logits = HalfMatrix(seed, Rows, cols, cols + 2, -8, 8);
                Matrix<float> logitsFloat = Widened(logits);
                var half = new Matrix<Half>(Rows, cols, cols + 1);
                var single = new Matrix<float>(Rows, cols, cols + 1);
                if (isLog)
                {
                    SoftmaxPrimitives.LogSoftmax<Half>(Rows, cols, logits.Span, logits.Ld, half.Span, half.Ld);
                    SoftmaxPrimitives.LogSoftmax<float>(Rows, cols, logitsFloat.Span, logitsFloat.Ld, single.Span, single.Ld);
                }
                else
                {
                    SoftmaxPrimitives.Softmax<Half>(Rows, cols, logits.Span, logits.Ld, half.Span, half.Ld);
                    SoftmaxPrimitives.Softmax<float>(Rows, cols, logitsFloat.Span, logitsFloat.Ld, single.Span, single.Ld);
                }
                AssertRoundedOnce(half, single, context);
                double[][] expected = [.. logits.RowsAsDouble().Select(isLog ? Reference.LogSoftmax : (Func<double[], double[]>)Reference.Softmax)];
                Expect.Rows(half, expected, (_, _, e) => (isLog ? 2e-6 * (1 + Math.Abs(e)) : 1e-6 * Math.Abs(e)) + HalfUlp(e), context);
            }
        }
    }

    [Fact]
    public void BackwardPassesAreTheFloatResultsRoundedOnce()
    {
        foreach (bool isLog in new[] { false, true })
        {
            foreach (int cols in Lengths)
            {
                int seed = 1_200_000 + cols;
                string context = $"{(isLog ? "log_softmax_backward" : "softmax_backward")} Half cols={cols} rows={Rows} seed={seed}";
                Matrix<Half> gradOutput = HalfMatrix(seed, Rows, cols, cols + 1, -1, 1);
                double[][] z = TestData.Uniform<double>(seed + 1, Rows, cols, cols, -8, 8).RowsAsDouble();
                double[][] forwardValues = [.. z.Select(isLog ? Reference.LogSoftmax : (Func<double[], double[]>)Reference.Softmax)];
                Matrix<Half> forward = new Matrix<Half>(Rows, cols, cols + 3).Fill((r, c) => forwardValues[r][c]);
                Matrix<float> gradOutputFloat = Widened(gradOutput), forwardFloat = Widened(forward);
                var half = new Matrix<Half>(Rows, cols, cols);
                var single = new Matrix<float>(Rows, cols, cols);
                if (isLog)
                {
                    SoftmaxPrimitives.LogSoftmaxBackward<Half>(Rows, cols, gradOutput.Span, gradOutput.Ld, forward.Span, forward.Ld, half.Span, half.Ld);
                    SoftmaxPrimitives.LogSoftmaxBackward<float>(Rows, cols, gradOutputFloat.Span, gradOutputFloat.Ld, forwardFloat.Span, forwardFloat.Ld,
                        single.Span, single.Ld);
                }
                else
                {
                    SoftmaxPrimitives.SoftmaxBackward<Half>(Rows, cols, gradOutput.Span, gradOutput.Ld, forward.Span, forward.Ld, half.Span, half.Ld);
                    SoftmaxPrimitives.SoftmaxBackward<float>(Rows, cols, gradOutputFloat.Span, gradOutputFloat.Ld, forwardFloat.Span, forwardFloat.Ld,
                        single.Span, single.Ld);
                }
                AssertRoundedOnce(half, single, context);
                double[][] g = gradOutput.RowsAsDouble(), o = forward.RowsAsDouble();
                double[][] expected = [.. g.Zip(o, isLog ? Reference.LogSoftmaxBackward : (Func<double[], double[], double[]>)Reference.SoftmaxBackward)];
                double[][] scale = [.. g.Zip(o, (gr, or) => isLog
                    ? gr.Select((gi, i) => Math.Abs(gi) + Math.Exp(or[i]) * gr.Sum(Math.Abs)).ToArray()
                    : gr.Select((gi, i) => or[i] * (Math.Abs(gi) + gr.Zip(or, (a, b) => Math.Abs(a * b)).Sum())).ToArray())];
                Expect.Rows(half, expected, (r, c, e) => 1e-6 * scale[r][c] + HalfUlp(e), context);
            }
        }
    }

    [Fact]
    public void JacobianIsTheFloatResultRoundedOnce()
    {
        foreach (int cols in Lengths.Where(n => n <= 65))
        {
            int seed = 1_300_000 + cols;
            string context = $"softmax_jacobian Half cols={cols} seed={seed}";
            Half[] logits = [.. TestData.Vector<double>(seed, cols, -8, 8).Select(v => (Half)v)];
            var half = new Matrix<Half>(cols, cols, cols + 2);
            var single = new Matrix<float>(cols, cols, cols + 2);
            SoftmaxPrimitives.SoftmaxJacobian<Half>(logits, half.Span, half.Ld);
            SoftmaxPrimitives.SoftmaxJacobian<float>(logits.Select(v => (float)v).ToArray(), single.Span, single.Ld);
            AssertRoundedOnce(half, single, context);
            double[] z = [.. logits.Select(v => (double)v)];
            double[,] expected = Reference.Jacobian(z);
            double[] o = Reference.Softmax(z);
            Expect.Rows(half, [.. Enumerable.Range(0, cols).Select(i => Enumerable.Range(0, cols).Select(j => expected[i, j]).ToArray())],
                (i, j, e) => 2e-6 * o[i] * ((i == j ? 1 : 0) + o[j]) + HalfUlp(e), context);
        }
    }

    /// <summary>Hard labels (long and int), soft targets, per-row upstream gradients, weights,
    /// smoothing, ignored rows: the losses and gradients of Half are the float ones rounded once.</summary>
    [Fact]
    public void CrossEntropyIsTheFloatResultRoundedOnce()
    {
        var none = new CrossEntropyOptions { Reduction = Reduction.None, LabelSmoothing = 0.1, GradScale = 0.75 };
        var mean = new CrossEntropyOptions { Reduction = Reduction.Mean };
        foreach (int cols in Lengths)
        {
            foreach (bool soft in new[] { false, true })
            {
                foreach (CrossEntropyOptions options in new[] { none, mean })
                {
                    int seed = 1_400_000 + cols;
                    string context = $"{(soft ? "cross_entropy_soft" : "cross_entropy")} Half cols={cols} rows={Rows} seed={seed} reduction {options.Reduction}";
                    Matrix<Half> logits = HalfMatrix(seed, Rows, cols, cols + 1, -10, 10);
                    Matrix<Half> target = HalfMatrix(seed + 1, Rows, cols, cols, 0, 1);
                    Half[] weight = [.. TestData.Vector<double>(seed + 2, cols, 0.25, 2).Select(v => (Half)v)];
                    long[] labels = TestData.Labels(seed + 3, Rows, cols);
                    labels[1] = -100; // one ignored row
                    int[] intLabels = [.. labels.Select(t => (int)t)];
                    Half[] gradOutput = options.Reduction == Reduction.None ? [(Half)1.5, (Half)(-0.25), (Half)3] : [];
                    int lossCount = options.Reduction == Reduction.None ? Rows : 1;

                    Matrix<float> logitsFloat = Widened(logits), targetFloat = Widened(target);
                    float[] weightFloat = [.. weight.Select(v => (float)v)], gradOutputFloat = [.. gradOutput.Select(v => (float)v)];
                    var singleGrad = new Matrix<float>(Rows, cols, cols);
                    float[] singleLoss = new float[lossCount];
                    if (soft)
                    {
                        SoftmaxPrimitives.CrossEntropy<float>(Rows, cols, logitsFloat.Span, logitsFloat.Ld, targetFloat.Span, targetFloat.Ld,
                            weightFloat, gradOutputFloat, singleLoss, singleGrad.Span, singleGrad.Ld, options);
                    }
                    else
                    {
                        SoftmaxPrimitives.CrossEntropy<float>(Rows, cols, logitsFloat.Span, logitsFloat.Ld, labels, weightFloat, gradOutputFloat,
                            singleLoss, singleGrad.Span, singleGrad.Ld, options);
                    }

                    foreach (bool asInt in soft ? new[] { false } : new[] { false, true })
                    {
                        var grad = new Matrix<Half>(Rows, cols, cols + 2);
                        Half[] loss = new Half[lossCount];
                        if (soft)
                        {
                            SoftmaxPrimitives.CrossEntropy<Half>(Rows, cols, logits.Span, logits.Ld, target.Span, target.Ld, weight, gradOutput,
                                loss, grad.Span, grad.Ld, options);
                        }
                        else if (asInt)
                        {
                            SoftmaxPrimitives.CrossEntropy<Half>(Rows, cols, logits.Span, logits.Ld, intLabels, weight, gradOutput,
                                loss, grad.Span, grad.Ld, options);
                        }
                        else
                        {
                            SoftmaxPrimitives.CrossEntropy<Half>(Rows, cols, logits.Span, logits.Ld, labels, weight, gradOutput,
                                loss, grad.Span, grad.Ld, options);
                        }
                        string what = context + (asInt ? " int labels" : "");
                        AssertRoundedOnce(grad, singleGrad, what + " grad");
                        for (int i = 0; i < lossCount; i++)
                        {
                            Assert.True(BitConverter.HalfToInt16Bits(loss[i]) == BitConverter.HalfToInt16Bits((Half)singleLoss[i]),
                                $"{what} loss[{i}]: {loss[i]}, the float loss {singleLoss[i]:R} rounds to {(Half)singleLoss[i]}");
                        }

                        double[] w = [.. weight.Select(v => (double)v)];
                        Reference.LossResult expected = soft
                            ? Reference.SoftCrossEntropy(logits.RowsAsDouble(), target.RowsAsDouble(), w, options)
                            : Reference.HardCrossEntropy(logits.RowsAsDouble(), labels, w, options);
                        double[] upstream = gradOutput.Length == 0 ? [1, 1, 1] : [.. gradOutput.Select(v => (double)v)];
                        double[][] expectedGrad = [.. expected.Grad.Select((row, r) => row.Select(g => upstream[r] * g).ToArray())];
                        Expect.Rows(grad, expectedGrad,
                            (r, _, e) => 1e-6 * Math.Abs(expected.Scale * upstream[r]) * expected.TargetAbsMass[r] + HalfUlp(e), what + " grad");
                        if (options.Reduction == Reduction.None)
                        {
                            for (int r = 0; r < Rows; r++)
                            {
                                double e = expected.RowLosses[r];
                                Expect.Close(e, (double)loss[r], 2e-6 * (expected.TargetAbsMass[r] + expected.RowLossScale[r]) + HalfUlp(e), what + " loss", r);
                            }
                        }
                        else
                        {
                            double e = expected.Reduced;
                            double tolerance = 2e-6 * (expected.TargetAbsMass.Sum() + expected.RowLossScale.Sum()) / Math.Abs(expected.Divisor) + HalfUlp(e);
                            Expect.Close(e, (double)loss[0], tolerance, what + " mean loss");
                        }
                    }
                }
            }
        }
    }

    [Fact]
    public void TheConvenienceLossOfHalfIsTheFloatLossRoundedOnce()
    {
        Half[] logits = [.. TestData.Vector<double>(7, 4 * 5, -6, 6).Select(v => (Half)v)];
        long[] labels = [0, 4, 2, 1];
        float single = SoftmaxPrimitives.CrossEntropy<float>(5, logits.Select(v => (float)v).ToArray(), labels);
        Assert.Equal((Half)single, SoftmaxPrimitives.CrossEntropy<Half>(5, logits, labels));
        Assert.Equal((Half)single, SoftmaxPrimitives.CrossEntropy<Half>(5, logits, [0, 4, 2, 1]));
    }

    /// <summary>In place (output exactly the input) gives what a separate output gives.</summary>
    [Fact]
    public void InPlaceGivesTheSameResult()
    {
        Matrix<Half> logits = HalfMatrix(11, Rows, 9, 10, -5, 5);
        Matrix<Half> separate = new(Rows, 9, 10), inPlace = logits.Clone();
        SoftmaxPrimitives.Softmax<Half>(Rows, 9, logits.Span, 10, separate.Span, 10);
        SoftmaxPrimitives.Softmax<Half>(Rows, 9, inPlace.Span, 10, inPlace.Span, 10);
        Assert.Equal(separate.Data, inPlace.Data);

        long[] labels = [1, 8, 0];
        var options = new CrossEntropyOptions { Reduction = Reduction.Sum };
        Half[] loss = new Half[1], lossInPlace = new Half[1];
        Matrix<Half> grad = new(Rows, 9, 10), gradInPlace = logits.Clone();
        SoftmaxPrimitives.CrossEntropy<Half>(Rows, 9, logits.Span, 10, labels, default, loss, grad.Span, 10, options);
        SoftmaxPrimitives.CrossEntropy<Half>(Rows, 9, gradInPlace.Span, 10, labels, default, lossInPlace, gradInPlace.Span, 10, options);
        Assert.Equal(grad.Data, gradInPlace.Data);
        Assert.Equal(loss, lossInPlace);
    }

    /// <summary>softmax([0, −10]) = [0.9999546, 4.5398e-5]: the second is below the smallest
    /// normal Half (6.1e-5), so it is stored as 0 (the flush rule of the 16-bit outputs), not as
    /// the subnormal Half nearest it.</summary>
    [Fact]
    public void AHalfResultBelowTheSmallestNormalIsZero()
    {
        Half[] probabilities = new Half[2];
        SoftmaxPrimitives.Softmax<Half>([(Half)0, (Half)(-10)], probabilities);
        Assert.Equal(BitConverter.HalfToUInt16Bits(Half.Zero), BitConverter.HalfToUInt16Bits(probabilities[1]));
        Assert.Equal((Half)(1 / (1 + Math.Exp(-10))), probabilities[0]);
    }

    /// <summary>Half arguments are checked as float ones, with the same exceptions, before
    /// anything is written.</summary>
    [Fact]
    public void BadHalfArgumentsThrowAndWriteNothing()
    {
        Half sentinel = Matrix<Half>.Sentinel;
        Half[] buffer = Enumerable.Repeat(sentinel, 40).ToArray();
        Half[] logits = [.. TestData.Vector<double>(3, 12, -2, 2).Select(v => (Half)v)];
        // The output shifted by one element over the input: a partial overlap.
        Half[] shared = [.. logits, .. buffer];
        Half[] before = [.. shared];
        Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.Softmax<Half>(3, 4, shared.AsSpan(0, 12), 4, shared.AsSpan(1, 12), 4));
        Assert.Equal(before, shared);
        Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.SoftmaxBackward<Half>(3, 4, logits, 4, shared.AsSpan(0, 12), 4, shared.AsSpan(2, 12), 4));
        Assert.Equal(before, shared);
        Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.SoftmaxJacobian<Half>(shared.AsSpan(0, 4), shared.AsSpan(2, 16), 4));
        Assert.Equal(before, shared);
        Assert.Throws<ArgumentOutOfRangeException>(() => SoftmaxPrimitives.Softmax<Half>(3, 4, logits, 3, buffer, 4));
        var label = Assert.Throws<ArgumentOutOfRangeException>(() =>
            SoftmaxPrimitives.CrossEntropy<Half>(3, 4, logits, 4, new long[] { 0, 1, 4 }, default, buffer.AsSpan(0, 1), buffer.AsSpan(1, 12), 4));
        Assert.Equal("target", label.ParamName);
        Half[] badWeight = [(Half)1, Half.NaN, (Half)1, (Half)1];
        var weight = Assert.Throws<ArgumentException>(() =>
            SoftmaxPrimitives.CrossEntropy<Half>(3, 4, logits, 4, logits, 4, badWeight, buffer.AsSpan(0, 1), buffer.AsSpan(1, 12), 4));
        Assert.Equal("weight", weight.ParamName);
        var reduced = Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.CrossEntropy<Half>(
            3, 4, logits, 4, new int[] { 0, 1, 2 }, default, [(Half)1, (Half)1, (Half)1], buffer.AsSpan(0, 1), buffer.AsSpan(1, 12), 4));
        Assert.Equal("gradOutput", reduced.ParamName);
        Assert.All(buffer, v => Assert.Equal(sentinel, v));
    }

    [Fact]
    public void NoRowsWithHalf()
    {
        Half[] loss = [(Half)7];
        SoftmaxPrimitives.CrossEntropy<Half>(0, 4, default, 4, ReadOnlySpan<long>.Empty, default, loss, default, 0);
        Assert.True(Half.IsNaN(loss[0]), $"mean over no rows: {loss[0]}, expected NaN");
        SoftmaxPrimitives.CrossEntropy<Half>(0, 4, default, 4, default, 4, default, loss, default, 0, new CrossEntropyOptions { Reduction = Reduction.Sum });
        Assert.Equal(Half.Zero, loss[0]);
        SoftmaxPrimitives.Softmax<Half>(0, 4, default, 4, default, 4);
    }

    /// <summary>The Half path validates by preparing the Half operation itself; that operation,
    /// given Half memory, checks overlaps with Half's element size.</summary>
    [Fact]
    public unsafe void TheHalfOperationChecksOverlapsInHalfElements()
    {
        Half* memory = stackalloc Half[16];
        // Two rows of 4 at ld 4 (8 Halfs, 16 bytes) and an output starting right after them: disjoint.
        var disjoint = new RowToRowOperation<Kernels.SoftmaxRow, Half>(2, 4, memory, 4, memory + 8, 4);
        Assert.True(disjoint.Prepare(out _, out Failure? failure), failure?.Message);
        var overlapping = new RowToRowOperation<Kernels.SoftmaxRow, Half>(2, 4, memory, 4, memory + 7, 4);
        Assert.False(overlapping.Prepare(out _, out failure));
        Assert.Equal(Status.Overlap, failure!.Status);
    }
}
