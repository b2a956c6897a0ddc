using System.Runtime.InteropServices;

namespace NativeSoftmax.Tests;

/// <summary>
/// Argument checks of the public API: the documented exception types, thrown before anything is
/// written (outputs are sentinel-filled and must stay so).
/// </summary>
public class ValidationTests
{
    private const int Rows = 3, Cols = 5;

    private static double[] Logits() => TestData.Uniform<double>(1, Rows, Cols, Cols, -3, 3).Span.ToArray();

    private static double[] Sentinels(int length) => Enumerable.Repeat(Matrix<double>.Sentinel, length).ToArray();

    private static void Untouched(double[] buffer, string context) =>
        Assert.True(buffer.All(v => v == Matrix<double>.Sentinel), $"{context}: an output was written although the call failed");

    private static void HardLoss(long[] target, double[]? weight, CrossEntropyOptions options, double[] loss, double[] grad) =>
        SoftmaxPrimitives.CrossEntropy<double>(Rows, Cols, Logits(), Cols, target, weight, loss, grad, Cols, options);

    [Theory]
    [InlineData(5L)]   // == cols
    [InlineData(99L)]
    [InlineData(-1L)]  // negative but not ignore_index
    [InlineData(long.MinValue)]
    public void LabelOutOfRangeThrowsAndWritesNothing(long badLabel)
    {
        foreach (Reduction reduction in Enum.GetValues<Reduction>())
        {
            double[] loss = Sentinels(Rows), grad = Sentinels(Rows * Cols);
            // The bad label is last, so a kernel that wrote rows before checking would be caught.
            var e = Assert.Throws<ArgumentOutOfRangeException>(() =>
                HardLoss([0, 4, badLabel], null, new CrossEntropyOptions { Reduction = reduction }, loss, grad));
            Assert.Contains("target", e.Message);
            Untouched(loss, $"label {badLabel} reduction {reduction}");
            Untouched(grad, $"label {badLabel} reduction {reduction}");
        }
    }

    [Theory]
    [InlineData(-0.1)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void LabelSmoothingOutsideZeroOneThrows(double smoothing)
    {
        double[] loss = Sentinels(1), grad = Sentinels(Rows * Cols);
        var options = new CrossEntropyOptions { LabelSmoothing = smoothing };
        Assert.Throws<ArgumentException>(() => HardLoss([0, 1, 2], null, options, loss, grad));
        Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.CrossEntropy<double>(Rows, Cols, Logits(), Cols,
            Logits(), Cols, default, loss, grad, Cols, options));
        Untouched(loss, $"label_smoothing {smoothing}");
        Untouched(grad, $"label_smoothing {smoothing}");
    }

    [Theory]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(double.NegativeInfinity)]
    public void NonFiniteWeightOrGradScaleThrows(double bad)
    {
        double[] loss = Sentinels(1), grad = Sentinels(Rows * Cols);
        double[] weight = [1, 1, bad, 1, 1];
        Assert.Throws<ArgumentException>(() => HardLoss([0, 1, 2], weight, CrossEntropyOptions.Default, loss, grad));
        Assert.Throws<ArgumentException>(() => HardLoss([0, 1, 2], null, new CrossEntropyOptions { GradScale = bad }, loss, grad));
        float[] lossF = [-1f];
        Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.CrossEntropy<float>(Rows, Cols, new float[Rows * Cols], Cols,
            new float[Rows * Cols], Cols, [1, 1, 1, 1, (float)bad], lossF, default, 0));
        Untouched(loss, $"weight/grad_scale {bad}");
        Untouched(grad, $"weight/grad_scale {bad}");
        Assert.Equal(-1f, lossF[0]);
    }

    /// <summary>The weight check finds a non-finite weight through the weights' float64 sum
    /// (<c>CrossEntropyValidation.SumOfWeights</c>), by 16 lanes and a scalar tail: a bad value in
    /// every lane and in the tail, in float32 and float64, is reported at its own index.</summary>
    [Theory]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(double.NegativeInfinity)]
    public unsafe void EveryNonFiniteWeightIsFoundAtItsIndex(double bad)
    {
        foreach (int cols in new[] { 1, 15, 16, 17, 37 })
        {
            for (int j = 0; j < cols; j++)
            {
                double[] wide = Enumerable.Repeat(1.5, cols).ToArray();
                wide[j] = bad;
                float[] narrow = wide.Select(w => (float)w).ToArray();
                fixed (double* w = wide)
                fixed (float* f = narrow)
                {
                    Assert.False(NativeSoftmax.Operations.CrossEntropyValidation.Weights(w, cols, out _, out Failure? failure));
                    Assert.StartsWith($"weight[{j}] is ", failure.Message);
                    Assert.False(NativeSoftmax.Operations.CrossEntropyValidation.Weights(f, cols, out _, out failure));
                    Assert.StartsWith($"weight[{j}] is ", failure.Message);
                }
            }
        }
    }

    /// <summary>The weights' sum against a compensated float64 sum, on lengths around the 16 lanes
    /// and weights of mixed signs over 60 decades; finite float64 weights that overflow a lane but
    /// not the sum in column order get that sum; and finite float64 weights whose sum overflows
    /// are accepted, as finite weights are (their sum is then +∞).</summary>
    [Fact]
    public unsafe void WeightSumIsTheFloat64SumOfTheWeights()
    {
        var random = new Random(7);
        foreach (int cols in new[] { 0, 1, 2, 15, 16, 17, 31, 33, 40, 1000, 4099 })
        {
            double[] wide = Enumerable.Range(0, cols)
                .Select(_ => (random.Next(2) == 0 ? -1 : 1) * Math.Pow(10, random.NextDouble() * 60 - 30)).ToArray();
            float[] narrow = wide.Select(w => (float)w).ToArray();
            fixed (double* w = wide)
            fixed (float* f = narrow)
            {
                Assert.True(NativeSoftmax.Operations.CrossEntropyValidation.Weights(w, cols, out double sum, out _));
                double bound = (cols + 16) * Math.Pow(2, -53) * wide.Sum(Math.Abs);
                Expect.Close(Reference.Sum(wide), sum, bound, $"float64 weights, {cols} columns");
                Assert.True(NativeSoftmax.Operations.CrossEntropyValidation.Weights(f, cols, out sum, out _));
                double[] widened = narrow.Select(v => (double)v).ToArray();
                Expect.Close(Reference.Sum(widened), sum, (cols + 16) * Math.Pow(2, -53) * widened.Sum(Math.Abs),
                    $"float32 weights, {cols} columns");
            }
        }
        // ±1e308 in lanes 0 and 1 twice: each lane overflows; in column order the second +1e308
        // absorbs the 14 ones before it, and the sum is the 14 after.
        double[] cancelling = Enumerable.Repeat(1.0, 32).ToArray();
        (cancelling[0], cancelling[1], cancelling[16], cancelling[17]) = (1e308, -1e308, 1e308, -1e308);
        fixed (double* w = cancelling)
        {
            Assert.True(NativeSoftmax.Operations.CrossEntropyValidation.Weights(w, cancelling.Length, out double sum, out _));
            Assert.Equal(14.0, sum);
        }
        double[] huge = Enumerable.Repeat(1e308, 20).ToArray();
        fixed (double* w = huge)
        {
            Assert.True(NativeSoftmax.Operations.CrossEntropyValidation.Weights(w, huge.Length, out double sum, out _));
            Assert.Equal(double.PositiveInfinity, sum);
        }
    }

    [Fact]
    public void NegativeWeightsAreAccepted()
    {
        double[] loss = new double[1];
        double[] weight = [-1, 2, -0.5, 1, 0];
        HardLoss([0, 1, 2], weight, new CrossEntropyOptions { Reduction = Reduction.Sum }, loss, new double[Rows * Cols]);
        double[][] z = TestData.Uniform<double>(1, Rows, Cols, Cols, -3, 3).RowsAsDouble();
        double expected = Reference.HardCrossEntropy(z, [0, 1, 2], weight, new CrossEntropyOptions { Reduction = Reduction.Sum }).Reduced;
        Expect.Close(expected, loss[0], 1e-14 * (1 + Math.Abs(expected)), "negative weights, sum");
    }

    [Fact]
    public void InvalidReductionThrows()
    {
        double[] loss = Sentinels(Rows), grad = Sentinels(Rows * Cols);
        Assert.Throws<ArgumentException>(() => HardLoss([0, 1, 2], null, new CrossEntropyOptions { Reduction = (Reduction)7 }, loss, grad));
        Untouched(grad, "reduction 7");
        // The convenience overload returns a scalar, so it refuses Reduction.None.
        Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.CrossEntropy<double>(Cols, Logits(), [0, 1, 2],
            options: new CrossEntropyOptions { Reduction = Reduction.None }));
    }

    [Fact]
    public void LeadingDimensionBelowColsThrowsOutOfRange()
    {
        double[] z = Logits(), o = Sentinels(Rows * Cols);
        Assert.Throws<ArgumentOutOfRangeException>(() => SoftmaxPrimitives.Softmax<double>(Rows, Cols, z, Cols - 1, o, Cols));
        Assert.Throws<ArgumentOutOfRangeException>(() => SoftmaxPrimitives.LogSoftmax<double>(Rows, Cols, z, Cols, o, Cols - 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => SoftmaxPrimitives.SoftmaxBackward<double>(Rows, Cols, z, Cols, z, 1, o, Cols));
        Assert.Throws<ArgumentOutOfRangeException>(() => SoftmaxPrimitives.LogSoftmaxBackward<double>(Rows, Cols, z, Cols, z, Cols, o, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => SoftmaxPrimitives.SoftmaxJacobian<double>(z.AsSpan(0, Cols), o, Cols - 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => SoftmaxPrimitives.CrossEntropy<double>(Rows, Cols, z, Cols - 1, [0, 1, 2], default, o, default, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => SoftmaxPrimitives.CrossEntropy<double>(Rows, Cols, z, Cols, [0, 1, 2], default, default, o, Cols - 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => SoftmaxPrimitives.CrossEntropy<double>(Rows, Cols, z, Cols, z, Cols - 2, default, o, default, 0));
        Untouched(o, "ld < cols");
    }

    [Fact]
    public void BadShapeThrowsOutOfRange()
    {
        double[] z = Logits(), o = Sentinels(Rows * Cols);
        Assert.Throws<ArgumentOutOfRangeException>(() => SoftmaxPrimitives.Softmax<double>(-1, Cols, z, Cols, o, Cols));
        Assert.Throws<ArgumentOutOfRangeException>(() => SoftmaxPrimitives.Softmax<double>(Rows, 0, z, Cols, o, Cols));
        // An empty single row is a bad argument of that overload (it has no rows or cols parameter).
        Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.Softmax<double>(ReadOnlySpan<double>.Empty, Span<double>.Empty));
        Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.SoftmaxJacobian<double>(ReadOnlySpan<double>.Empty, o, 1));
        Untouched(o, "bad shape");
    }

    /// <summary>A span shorter than (rows − 1)·ld + cols is rejected (as an ArgumentException or a subclass).</summary>
    [Fact]
    public void TooShortSpanThrows()
    {
        double[] z = Logits(), o = Sentinels(Rows * Cols);
        int shortLength = Rows * Cols - 1;
        Assert.ThrowsAny<ArgumentException>(() => SoftmaxPrimitives.Softmax<double>(Rows, Cols, z.AsSpan(0, shortLength), Cols, o, Cols));
        Assert.ThrowsAny<ArgumentException>(() => SoftmaxPrimitives.LogSoftmax<double>(Rows, Cols, z, Cols, o.AsSpan(0, shortLength), Cols));
        Assert.ThrowsAny<ArgumentException>(() => SoftmaxPrimitives.SoftmaxBackward<double>(Rows, Cols, z, Cols, z.AsSpan(0, shortLength), Cols, o, Cols));
        Assert.ThrowsAny<ArgumentException>(() => SoftmaxPrimitives.LogSoftmaxBackward<double>(Rows, Cols, z.AsSpan(1), Cols, z, Cols, o, Cols));
        Assert.ThrowsAny<ArgumentException>(() => SoftmaxPrimitives.SoftmaxJacobian<double>(z.AsSpan(0, 4), o.AsSpan(0, 15), 4));
        Assert.ThrowsAny<ArgumentException>(() => SoftmaxPrimitives.Softmax<double>(z, o.AsSpan(1)));   // one-row overload: lengths differ
        Assert.ThrowsAny<ArgumentException>(() => SoftmaxPrimitives.CrossEntropy<double>(Rows, Cols, z.AsSpan(0, shortLength), Cols, [0, 1, 2], default, o, default, 0));
        Assert.ThrowsAny<ArgumentException>(() => SoftmaxPrimitives.CrossEntropy<double>(Rows, Cols, z, Cols, [0, 1], default, o, default, 0));   // 2 labels for 3 rows
        Assert.ThrowsAny<ArgumentException>(() => SoftmaxPrimitives.CrossEntropy<double>(Rows, Cols, z, Cols, [0, 1, 2], new double[Cols - 1], o, default, 0));
        Assert.ThrowsAny<ArgumentException>(() => SoftmaxPrimitives.CrossEntropy<double>(Rows, Cols, z, Cols, [0, 1, 2], default, o.AsSpan(0, 2),
            default, 0, new CrossEntropyOptions { Reduction = Reduction.None }));
        Assert.ThrowsAny<ArgumentException>(() => SoftmaxPrimitives.CrossEntropy<double>(Rows, Cols, z, Cols, [0, 1, 2], default, default, o.AsSpan(0, shortLength), Cols));
        Assert.ThrowsAny<ArgumentException>(() => SoftmaxPrimitives.CrossEntropy<double>(Rows, Cols, z, Cols, z.AsSpan(0, shortLength), Cols, default, o, default, 0));
        Untouched(o, "short spans");
    }

    /// <summary>The XML docs and the brief say a short span is an <see cref="ArgumentException"/>
    /// ("ArgumentOutOfRangeException: rows &lt; 0, cols &lt; 1, or a leading dimension &lt; cols").</summary>
    [Fact]
    public void TooShortSpanThrowsExactlyArgumentException()
    {
        double[] z = Logits(), o = Sentinels(Rows * Cols);
        Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.Softmax<double>(Rows, Cols, z.AsSpan(0, Rows * Cols - 1), Cols, o, Cols));
    }

    [Fact]
    public void PartialOverlapThrowsAndExactInPlaceIsAllowed()
    {
        double[] buffer = Sentinels(2 * Rows * Cols);
        TestData.Uniform<double>(2, Rows, Cols, Cols, -3, 3).Span.CopyTo(buffer);
        Span<double> input = buffer.AsSpan(0, Rows * Cols);
        double[] before = buffer.ToArray();

        Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.Softmax<double>(Rows, Cols, buffer.AsSpan(0, Rows * Cols), Cols, buffer.AsSpan(1, Rows * Cols), Cols));
        Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.LogSoftmax<double>(Rows, Cols, buffer.AsSpan(1, Rows * Cols), Cols, buffer.AsSpan(0, Rows * Cols), Cols));
        // Same start, different leading dimension: not "exactly the input".
        Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.Softmax<double>(2, Cols, buffer.AsSpan(0, 2 * Cols + 1), Cols + 1, buffer.AsSpan(0, 2 * Cols), Cols));
        Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.SoftmaxBackward<double>(Rows, Cols, buffer.AsSpan(0, Rows * Cols), Cols,
            new double[Rows * Cols], Cols, buffer.AsSpan(Cols, Rows * Cols), Cols));
        Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.SoftmaxJacobian<double>(buffer.AsSpan(0, Cols), buffer.AsSpan(2, Cols * Cols), Cols));
        Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.CrossEntropy<double>(Rows, Cols, buffer.AsSpan(0, Rows * Cols), Cols, [0, 1, 2], default,
            buffer.AsSpan(Rows * Cols - 1, 1), default, 0));                                            // loss inside the logits
        Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.CrossEntropy<double>(Rows, Cols, buffer.AsSpan(0, Rows * Cols), Cols, [0, 1, 2], default,
            default, buffer.AsSpan(1, Rows * Cols), Cols));                                             // grad shifted over the logits
        Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.CrossEntropy<double>(Rows, Cols, new double[Rows * Cols], Cols,
            buffer.AsSpan(0, Rows * Cols), Cols, default, default, buffer.AsSpan(1, Rows * Cols), Cols));  // grad shifted over the soft target
        Assert.Equal(before, buffer);

        // Exactly in place is allowed where documented.
        SoftmaxPrimitives.Softmax<double>(Rows, Cols, input, Cols, input, Cols);
        Assert.Equal(1.0, input[..Cols].ToArray().Sum(), 14);
        double[] gradOutput = TestData.Uniform<double>(3, Rows, Cols, Cols, -1, 1).Span.ToArray();
        SoftmaxPrimitives.SoftmaxBackward<double>(Rows, Cols, gradOutput, Cols, input, Cols, input, Cols);   // grad_logits == output
        SoftmaxPrimitives.LogSoftmaxBackward<double>(Rows, Cols, gradOutput, Cols, input, Cols, gradOutput, Cols);   // grad_logits == grad_output
        Assert.True(buffer.Skip(Rows * Cols).All(v => v == Matrix<double>.Sentinel), "in place wrote past the matrix");
    }

    /// <summary>Half is computed through float (HalfTests); any other element type still throws
    /// NotSupportedException, before anything is written.</summary>
    [Fact]
    public void AnElementTypeOtherThanFloatDoubleOrHalfIsNotSupported()
    {
        var z = new NFloat[Cols];
        var o = new NFloat[Cols * Cols];
        Assert.Throws<NotSupportedException>(() => SoftmaxPrimitives.Softmax<NFloat>(1, Cols, z, Cols, o, Cols));
        Assert.Throws<NotSupportedException>(() => SoftmaxPrimitives.Softmax<NFloat>(z, o.AsSpan(0, Cols)));
        Assert.Throws<NotSupportedException>(() => SoftmaxPrimitives.LogSoftmax<NFloat>(1, Cols, z, Cols, o, Cols));
        Assert.Throws<NotSupportedException>(() => SoftmaxPrimitives.LogSoftmax<NFloat>(z, o.AsSpan(0, Cols)));
        Assert.Throws<NotSupportedException>(() => SoftmaxPrimitives.SoftmaxBackward<NFloat>(1, Cols, z, Cols, z, Cols, o, Cols));
        Assert.Throws<NotSupportedException>(() => SoftmaxPrimitives.LogSoftmaxBackward<NFloat>(1, Cols, z, Cols, z, Cols, o, Cols));
        Assert.Throws<NotSupportedException>(() => SoftmaxPrimitives.SoftmaxJacobian<NFloat>(z, o, Cols));
        Assert.Throws<NotSupportedException>(() => SoftmaxPrimitives.CrossEntropy<NFloat>(1, Cols, z, Cols, new long[] { 0 }, default, o.AsSpan(0, 1), default, 0));
        Assert.Throws<NotSupportedException>(() => SoftmaxPrimitives.CrossEntropy<NFloat>(1, Cols, z, Cols, new int[] { 0 }, default, o.AsSpan(0, 1), default, 0));
        Assert.Throws<NotSupportedException>(() => SoftmaxPrimitives.CrossEntropy<NFloat>(1, Cols, z, Cols, z, Cols, default, o.AsSpan(0, 1), default, 0));
        Assert.Throws<NotSupportedException>(() => SoftmaxPrimitives.CrossEntropy<NFloat>(Cols, z, new long[] { 0 }));
        Assert.All(o, v => Assert.Equal(default(NFloat), v));
    }

    [Fact]
    public void NoRowsThroughThePublicApiWithBuffers()
    {
        double[] z = Logits(), o = Sentinels(Cols), loss = Sentinels(1);
        SoftmaxPrimitives.Softmax<double>(0, Cols, z, Cols, o, Cols);
        SoftmaxPrimitives.LogSoftmax<double>(0, Cols, z, Cols, o, Cols);
        Untouched(o, "rows = 0");
        SoftmaxPrimitives.CrossEntropy<double>(0, Cols, z, Cols, z, Cols, default, loss, default, 0);
        Assert.True(double.IsNaN(loss[0]), $"soft-target mean over no rows: {loss[0]}, expected NaN");
        SoftmaxPrimitives.CrossEntropy<double>(0, Cols, z, Cols, z, Cols, default, loss, default, 0,
            new CrossEntropyOptions { Reduction = Reduction.Sum });
        Assert.Equal(0.0, loss[0]);
    }

    /// <summary>rows = 0 with empty spans — the natural managed call (an empty batch) — must work
    /// as documented: nothing written, mean NaN, sum 0. Hard labels cannot avoid it: target must
    /// hold exactly rows = 0 labels.</summary>
    [Fact]
    public void NoRowsThroughThePublicApiWithEmptySpans()
    {
        double[] loss0 = [7];
        SoftmaxPrimitives.CrossEntropy<double>(0, Cols, Logits(), Cols, ReadOnlySpan<long>.Empty, default, loss0, default, 0);
        Assert.True(double.IsNaN(loss0[0]), $"hard-label mean over no rows: {loss0[0]}, expected NaN");
        SoftmaxPrimitives.Softmax<double>(0, Cols, ReadOnlySpan<double>.Empty, Cols, Span<double>.Empty, Cols);
        SoftmaxPrimitives.LogSoftmax<float>(0, Cols, ReadOnlySpan<float>.Empty, Cols, Span<float>.Empty, Cols);
        SoftmaxPrimitives.SoftmaxBackward<double>(0, Cols, default, Cols, default, Cols, default, Cols);
        SoftmaxPrimitives.LogSoftmaxBackward<double>(0, Cols, default, Cols, default, Cols, default, Cols);
        double mean = SoftmaxPrimitives.CrossEntropy<double>(Cols, ReadOnlySpan<double>.Empty, ReadOnlySpan<long>.Empty);
        Assert.True(double.IsNaN(mean), $"mean over no rows: {mean}, expected NaN");
        double[] loss = [7];
        SoftmaxPrimitives.CrossEntropy<double>(0, Cols, default, Cols, default, Cols, default, loss, default, 0,
            new CrossEntropyOptions { Reduction = Reduction.Sum });
        Assert.Equal(0.0, loss[0]);
    }

    [Fact]
    public void BothOutputsMissingThrows()
    {
        Assert.ThrowsAny<ArgumentException>(() => SoftmaxPrimitives.CrossEntropy<double>(Rows, Cols, Logits(), Cols, [0, 1, 2], default, default, default, 0));
    }
}
