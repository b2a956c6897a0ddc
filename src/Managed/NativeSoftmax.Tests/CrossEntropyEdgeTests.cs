using System.Numerics;

namespace NativeSoftmax.Tests;

/// <summary>
/// Cross-entropy cases where the reduction or the smoothing term used to go wrong: a weighted mean
/// whose divisor is 0, and smoothing over logits near ±FLT_MAX.
/// </summary>
public class CrossEntropyEdgeTests
{
    /// <summary>
    /// Every label has weight 0, so the mean's divisor Σ w_t is 0, while the smoothing term is not:
    /// the header (and PyTorch) say the mean is NaN, and the gradient of every row it covers is NaN
    /// with it (not ±∞ and NaN mixed); an ignored row keeps its zero gradient.
    /// </summary>
    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void WeightedMeanWithADivisorOfZeroIsNaN(Width width, string dtype)
    {
        if (dtype == "float32")
        {
            DivisorZero<float>(width);
        }
        else
        {
            DivisorZero<double>(width);
        }
    }

    private static void DivisorZero<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        double[][] z = [[0.25, -0.5, 1], [1.5, 0, -1], [0, 2, 0.5], [3, 1, 2]];
        var logits = new Matrix<T>(4, 3, 3).Fill((r, c) => z[r][c]);
        T[] weight = [T.Zero, T.One, T.CreateTruncating(2)];
        var options = new CrossEntropyOptions { Reduction = Reduction.Mean, LabelSmoothing = 0.1 };
        foreach (long[] labels in new long[][] { [0, 0, 0, 0], [0, 0, 0, -100] })
        {
            string context = $"cross_entropy width={width} dtype={TestData.Name<T>()} labels=[{string.Join(", ", labels)}] weight [0, 1, 2], smoothing 0.1, mean";
            T[] loss = [Matrix<T>.Sentinel];
            var grad = new Matrix<T>(4, 3, 3);
            Ops.CrossEntropy(width, logits, labels, weight, options, loss, grad);
            Assert.True(T.IsNaN(loss[0]), $"{context}: loss {loss[0]}, expected NaN");
            for (int r = 0; r < 4; r++)
            {
                for (int c = 0; c < 3; c++)
                {
                    bool ignored = labels[r] == -100;
                    Assert.True(ignored ? grad[r, c] == T.Zero : T.IsNaN(grad[r, c]),
                        $"{context}: grad[{r}, {c}] = {grad[r, c]}, expected {(ignored ? "0 (ignored row)" : "NaN")}");
                }
            }
            Assert.True(double.IsNaN(Reference.HardCrossEntropy(z, labels, [0, 1, 2], options).Reduced), "the reference disagrees");
        }
    }

    /// <summary>
    /// Logits ±3e38 with label smoothing (hard labels and soft targets): max − z_j = 6e38 overflows
    /// float32, but the loss, ε/C·Σ_j (lse − z_j) ≈ 3e37 for two classes, does not.
    /// </summary>
    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void SmoothingOverLogitsNearFloatMaxIsFinite(Width width, string dtype)
    {
        if (dtype == "float32")
        {
            NearFloatMax<float>(width, 3e38);
        }
        else
        {
            NearFloatMax<double>(width, 3e38);
        }
    }

    /// <summary>
    /// Class weights of 1e37 (finite, so accepted) with label smoothing: the weights' sum over a
    /// chunk passes FLT_MAX, though the loss fits float32 and every term of it float64. The shortest
    /// long row (chunks, <see cref="NativeSoftmax.Kernels.LongRow{TVec, T}"/>) against the longest
    /// short one and the float64 reference, and the vocabulary split's smoothing sum. Long rows gave
    /// NaN once, summing the chunk weights in float32 (found by review).
    /// </summary>
    [Theory, MemberData(nameof(Cases.EveryWidth), MemberType = typeof(Cases))]
    public void HugeFiniteWeightsKeepTheSmoothedLossFinite(Width width)
    {
        var options = new CrossEntropyOptions { Reduction = Reduction.None, LabelSmoothing = 0.1 };
        foreach (int cols in new[] { 8191, 8192 })
        {
            Matrix<float> logits = TestData.Uniform<float>(5 + cols, 1, cols, cols, -1, 1);
            float[] weight = [.. Enumerable.Repeat(1e37f, cols)];
            double[] w = [.. weight.Select(v => (double)v)];
            long[] target = [3];
            double[][] z = logits.RowsAsDouble();
            Reference.LossResult expected = Reference.HardCrossEntropy(z, target, w, options);
            string context = $"width={width} cols={cols} weights 1e37, smoothing 0.1";
            float[] loss = [0];
            Ops.CrossEntropy(width, logits, target, weight, options, loss, null);
            Expect.Close(expected.RowLosses[0], loss[0], 2e-6 * (expected.TargetAbsMass[0] + expected.RowLossScale[0]), context + " loss", 0);

            // The split's statistics of the whole row as one shard: (ε/C)·Σ_j w_j·(max − z_j) + (1 − ε)·w_t·(max − z_t).
            var stats = new CrossEntropyStats[1];
            SoftmaxPrimitives.CrossEntropyPartial<float>(1, cols, 0, cols, logits.Data, cols, target, weight, stats, options);
            double max = z[0].Max();
            double gaps = 0.1 / cols * Reference.Sum(z[0].Select((v, j) => w[j] * (max - v))) + 0.9 * w[3] * (max - z[0][3]);
            Expect.Close(gaps, stats[0].TargetGaps, 1e-6 * gaps, context + " partial TargetGaps");
        }
    }

    /// <summary>
    /// Finite float64 weights whose sum is not: ±1e308 that cancel in column order but not in the
    /// lanes the weights are summed in, and every other weight 1e308, whose sum is +∞ in any order. Without
    /// label smoothing Σw does not enter the loss or the gradient, which stay finite and match the
    /// float64 reference, as does the vocabulary split (partial, then finish). Σw once turned every
    /// gradient into 0·∞ = NaN (found by review).
    /// </summary>
    [Theory, MemberData(nameof(Cases.EveryWidth), MemberType = typeof(Cases))]
    public void FiniteWeightsWhoseSumOverflowsLeaveUnsmoothedResultsFinite(Width width)
    {
        var options = new CrossEntropyOptions { Reduction = Reduction.Sum };
        foreach (int cols in new[] { 12, 32 })
        {
            double[] cancelling = [.. Enumerable.Repeat(1.0, cols)];
            cancelling[0] = 1e308;
            cancelling[1] = -1e308;
            if (cols > 17)
            {
                cancelling[16] = 1e308; // lane 0 of the 16 overflows to +∞, lane 1 to −∞
                cancelling[17] = -1e308;
            }
            double[] overflowing = [.. Enumerable.Range(0, cols).Select(j => j % 2 == 0 ? 1e308 : 1.0)];
            foreach (double[] weight in new[] { cancelling, overflowing })
            {
                const int Rows = 9;
                Matrix<double> logits = TestData.Uniform<double>(cols, Rows, cols, cols, -2, 2);
                long[] labels = [.. Enumerable.Range(0, Rows).Select(r => (long)((r * 5 + 2) % cols))];
                // Labels away from the huge weights, so that the loss itself stays finite.
                labels = [.. labels.Select(t => Math.Abs(weight[t]) > 1 ? 3L : t)]; // column 3 weighs 1 in both
                double[][] z = logits.RowsAsDouble();
                Reference.LossResult expected = Reference.HardCrossEntropy(z, labels, weight, options);
                string context = $"width={width} cols={cols} weights {(weight == overflowing ? "all 1e308" : "±1e308 cancelling")}";
                var loss = new double[1];
                var grad = new Matrix<double>(Rows, cols, cols);
                Ops.CrossEntropy(width, logits, labels, weight, options, loss, grad);
                Assert.True(double.IsFinite(expected.Reduced), context + ": the reference loss is not finite");
                Expect.Close(expected.Reduced, loss[0], 1e-14 * (expected.TargetAbsMass.Sum() + expected.RowLossScale.Sum()), context + " loss");
                Expect.Rows(grad, expected.Grad, (r, _, _) => 3e-15 * expected.TargetAbsMass[r], context + " grad");

                var stats = new CrossEntropyStats[Rows];
                SoftmaxPrimitives.CrossEntropyPartial<double>(Rows, cols, 0, cols, logits.Data, cols, labels, weight, stats, options);
                var splitLoss = new double[1];
                var splitGrad = new double[Rows * cols];
                SoftmaxPrimitives.CrossEntropyFinish<double>(Rows, cols, 0, cols, logits.Data, cols, labels, weight, stats, default,
                    splitLoss, splitGrad, cols, options);
                Expect.Close(expected.Reduced, splitLoss[0], 1e-14 * (expected.TargetAbsMass.Sum() + expected.RowLossScale.Sum()), context + " split loss");
                for (int r = 0; r < Rows; r++)
                {
                    for (int j = 0; j < cols; j++)
                    {
                        Expect.Close(expected.Grad[r][j], splitGrad[r * cols + j], 3e-15 * expected.TargetAbsMass[r], context + " split grad", r, j);
                    }
                }
            }
        }
    }

    private static void NearFloatMax<T>(Width width, double big)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var options = new CrossEntropyOptions { Reduction = Reduction.None, LabelSmoothing = 0.1 };
        // 8195: a long row, whose chunks sum their own gaps (float32: the first chunk's overflows).
        foreach (int cols in new[] { 2, 3, 5, 9, 17, 40, 8195 })
        {
            string context = $"width={width} dtype={TestData.Name<T>()} cols={cols} logits [{big:E0}, -{big:E0}…], smoothing 0.1";
            var logits = new Matrix<T>(2, cols, cols).Fill((r, c) => c == r ? big : -big);
            double[][] z = logits.RowsAsDouble();
            long[] labels = [0, 1]; // on the large logit: the loss is the smoothing term, ε/C·(C − 1)·2·big
            var target = new Matrix<T>(2, cols, cols).Fill((r, c) => c == r ? 1 : 0);
            var loss = new T[2];
            var grad = new Matrix<T>(2, cols, cols);
            double unit = Expect.IsFloat<T>() ? 1e-6 : 1e-14;

            Ops.CrossEntropy(width, logits, labels, null, options, loss, grad);
            Check(Reference.HardCrossEntropy(z, labels, null, options), loss, grad, unit, "cross_entropy " + context);
            Ops.SoftCrossEntropy(width, logits, target, null, options, loss, grad);
            Check(Reference.SoftCrossEntropy(z, target.RowsAsDouble(), null, options), loss, grad, unit, "cross_entropy_soft " + context);
        }
    }

    private static void Check<T>(Reference.LossResult expected, T[] loss, Matrix<T> grad, double unit, string context)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        for (int r = 0; r < loss.Length; r++)
        {
            double e = expected.RowLosses[r];
            Assert.True(double.IsFinite(e) && e > 1e37, $"{context}: the reference loss {e} is not the finite ≈3e37 this test is about");
            Expect.Close(e, double.CreateTruncating(loss[r]), 2 * unit * Math.Abs(e), context + " loss", r);
        }
        Expect.Rows(grad, expected.Grad, (r, _, e) => unit * (expected.TargetAbsMass[r] + Math.Abs(e)), context + " grad");
    }
}
