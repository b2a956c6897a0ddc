using NativeSoftmax.Operations;

namespace NativeSoftmax.Tests;

/// <summary>
/// The <see cref="BFloat16"/> type (conversions from its definition: widening exact, narrowing to
/// nearest even) and the bfloat16 overloads of <see cref="SoftmaxPrimitives"/>: each gives what the
/// half-precision operation gives at the width the CPU runs (the operation is tested against float64
/// at every width in <see cref="HalfOperationTests"/>), checks its spans, and writes nothing on failure.
/// </summary>
public class BFloat16Tests
{
    private static BFloat16[] Values(params double[] values) =>
        [.. values.Select(v => BFloat16.FromBits(HalfFormats.FromDouble(HalfType.BFloat16, v)))];

    [Fact]
    public void ConversionsFollowTheDefinition()
    {
        for (int bits = 0; bits < 0x10000; bits++)
        {
            double expected = HalfFormats.Decode(HalfType.BFloat16, (ushort)bits);
            float widened = (float)BFloat16.FromBits((ushort)bits);
            Assert.True(double.IsNaN(expected) ? float.IsNaN(widened) : expected == widened, $"0x{bits:X4}");
        }
        // 1 + 2^-8 is half-way between 1 and 1 + 2^-7: to even (1); 1 + 3·2^-8 to 1 + 2^-6.
        Assert.Equal(0x3F80, ((BFloat16)(1f + MathF.Pow(2, -8))).Bits);
        Assert.Equal(0x3F82, ((BFloat16)(1f + 3 * MathF.Pow(2, -8))).Bits);
        Assert.Equal(0x7F80, ((BFloat16)float.MaxValue).Bits); // rounds past the largest finite to ∞
        Assert.True(float.IsNaN((float)(BFloat16)float.NaN));
        Assert.Equal("1.5", ((BFloat16)1.5f).ToString());
    }

    [Fact]
    public unsafe void OverloadsComputeWhatTheOperationsDo()
    {
        const int rows = 3, cols = 37;
        var random = new Random(5);
        BFloat16[] logits = Values([.. Enumerable.Range(0, rows * cols).Select(_ => random.NextDouble() * 10 - 5)]);
        var viaApi = new BFloat16[rows * cols];
        var viaOperation = new ushort[rows * cols];
        SoftmaxPrimitives.Softmax(rows, cols, logits, cols, viaApi, cols);
        fixed (BFloat16* z = logits)
        fixed (ushort* o = viaOperation)
        {
            Assert.True(new HalfRowToRowOperation<Kernels.SoftmaxRow, Simd.BFloat16Format>(rows, cols, (ushort*)z, cols, o, cols)
                .Prepare(out Prepared<HalfRowToRowOperation<Kernels.SoftmaxRow, Simd.BFloat16Format>> prepared, out _));
            Dispatch.Run<HalfRowToRowOperation<Kernels.SoftmaxRow, Simd.BFloat16Format>, float>(in prepared);
        }
        Assert.Equal(viaOperation, viaApi.Select(b => b.Bits));
        for (int r = 0; r < rows; r++)
        {
            double[] z = [.. logits.Skip(r * cols).Take(cols).Select(b => (double)(float)b)];
            double[] p = Reference.Softmax(z);
            for (int c = 0; c < cols; c++)
            {
                HalfOperationTests.AssertHalf(HalfType.BFloat16, viaApi[r * cols + c].Bits, p[c], 1e-6 * p[c], $"softmax [{r},{c}]");
            }
        }

        var logProbabilities = new BFloat16[rows * cols];
        SoftmaxPrimitives.LogSoftmax(rows, cols, logits, cols, logProbabilities, cols);
        var back = new BFloat16[rows * cols];
        SoftmaxPrimitives.SoftmaxBackward(rows, cols, logits, cols, viaApi, cols, back, cols);
        SoftmaxPrimitives.LogSoftmaxBackward(rows, cols, logits, cols, logProbabilities, cols, back, cols);
        var jacobian = new BFloat16[cols * cols];
        SoftmaxPrimitives.SoftmaxJacobian(logits.AsSpan(0, cols), jacobian, cols);
        double[] row0 = Reference.Softmax([.. logits.Take(cols).Select(b => (double)(float)b)]);
        HalfOperationTests.AssertHalf(HalfType.BFloat16, jacobian[1].Bits, -row0[0] * row0[1], 2e-6 * row0[0] * row0[1], "jacobian [0,1]");

        long[] labels = [1, 0, 36];
        var loss = new float[1];
        var grad = new BFloat16[rows * cols];
        SoftmaxPrimitives.CrossEntropy(rows, cols, logits, cols, labels, ReadOnlySpan<float>.Empty, loss, grad, cols,
            new CrossEntropyOptions { Reduction = Reduction.Sum });
        double[][] zr = [.. Enumerable.Range(0, rows).Select(r => logits.Skip(r * cols).Take(cols).Select(b => (double)(float)b).ToArray())];
        Reference.LossResult expected = Reference.HardCrossEntropy(zr, labels, null, new CrossEntropyOptions { Reduction = Reduction.Sum });
        Expect.Close(expected.Reduced, loss[0], 2e-6 * (rows + Math.Abs(expected.Reduced)), "bfloat16 cross-entropy loss");
        HalfOperationTests.AssertHalf(HalfType.BFloat16, grad[1].Bits, expected.Grad[0][1], 1e-6, "bfloat16 cross-entropy grad [0,1]");

        var softLoss = new float[rows];
        SoftmaxPrimitives.CrossEntropy(rows, cols, logits, cols, viaApi, cols, ReadOnlySpan<float>.Empty, softLoss, grad, cols,
            new CrossEntropyOptions { Reduction = Reduction.None });
        double[][] pr = [.. Enumerable.Range(0, rows).Select(r => viaApi.Skip(r * cols).Take(cols).Select(b => (double)(float)b).ToArray())];
        Reference.LossResult soft = Reference.SoftCrossEntropy(zr, pr, null, new CrossEntropyOptions { Reduction = Reduction.None });
        Expect.Close(soft.RowLosses[2], softLoss[2], 2e-6 * (1 + Math.Abs(soft.RowLosses[2])), "bfloat16 soft loss");
    }

    [Fact]
    public void BadArgumentsThrowAndWriteNothing()
    {
        BFloat16[] logits = Values(1, 2, 3, 4, 5, 6);
        var output = new BFloat16[6];
        Array.Fill(output, BFloat16.FromBits(0x1234));
        Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.Softmax(2, 3, logits, 3, output.AsSpan(0, 5), 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => SoftmaxPrimitives.Softmax(2, 3, logits, 2, output, 3));
        var loss = new float[] { -1f };
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            SoftmaxPrimitives.CrossEntropy(2, 3, logits, 3, [0L, 3L], ReadOnlySpan<float>.Empty, loss, output, 3));
        Assert.All(output, b => Assert.Equal(0x1234, b.Bits));
        Assert.Equal(-1f, loss[0]);
    }
}
