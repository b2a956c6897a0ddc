using NativeSoftmax.Kernels;
using NativeSoftmax.Operations;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Tests;

/// <summary>
/// The bfloat16 and float16 operations (the ones the C ABI's _bf16/_f16 functions run) at every
/// width, against float64 references on the same 16-bit inputs: every 16-bit output within the
/// float32 bound of its operation plus one ulp of its type, and never subnormal (flushed below the
/// type's smallest normal); float32 losses within the float32 bounds. Padding between rows is
/// never written. Lengths cover every width's short rows, steps and tails, and a chunked long row.
/// </summary>
public unsafe class HalfOperationTests
{
    private static readonly int[] Lengths = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 65, 1000, 8195];

    internal const ushort Padding = 0xFFFF; // a NaN in both types, which no output is here

    private static void RunAt<TOperation>(Width width, TOperation operation)
        where TOperation : struct, IRowOperation<TOperation, float> =>
        Ops.RunAt<TOperation, float>(width, operation);

    /// <summary>A rows × cols matrix with leading dimension ld of 16-bit values from f, padding elsewhere.</summary>
    internal static ushort[] HalfMatrix(HalfType type, int rows, int cols, int ld, Func<int, int, double> f)
    {
        var data = new ushort[(rows - 1) * ld + cols + 16];
        Array.Fill(data, Padding);
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < cols; c++)
            {
                data[r * ld + c] = HalfFormats.FromDouble(type, f(r, c));
            }
        }
        return data;
    }

    internal static double[] Row(HalfType type, ushort[] data, int r, int cols, int ld) =>
        [.. Enumerable.Range(0, cols).Select(c => HalfFormats.Decode(type, data[r * ld + c]))];

    /// <summary>The rule each 16-bit output follows (see the class summary).</summary>
    internal static void AssertHalf(HalfType type, ushort bits, double exact, double tolerance, string context)
    {
        string? error = HalfError(type, bits, exact, tolerance);
        Assert.True(error == null, $"{context}: {error}");
    }

    /// <summary>What breaks the rule, or null: <see cref="AssertHalf"/> without building a message per element.</summary>
    internal static string? HalfError(HalfType type, ushort bits, double exact, double tolerance)
    {
        double got = HalfFormats.Decode(type, bits);
        if (got != 0 && Math.Abs(got) < HalfFormats.MinNormal(type))
        {
            return $"0x{bits:X4} ({got:R}) is subnormal";
        }
        if (double.IsNaN(exact))
        {
            return double.IsNaN(got) ? null : $"{got:R}, expected NaN";
        }
        double rounded = HalfFormats.Round(type, exact);
        if (double.IsInfinity(rounded))
        {
            return got == rounded ? null : $"{got:R}, expected {rounded}";
        }
        double bound = tolerance + HalfFormats.Ulp(type, Math.Abs(exact) + tolerance);
        bool ok = Math.Abs(got - exact) <= bound || (got == 0 && Math.Abs(exact) <= HalfFormats.MinNormal(type) + bound);
        return ok ? null : $"{got:R} (0x{bits:X4}), exact {exact:R}, bound {bound:G3}";
    }

    internal static void AssertPadding(ushort[] data, int rows, int cols, int ld, string context)
    {
        for (int i = 0; i < data.Length; i++)
        {
            bool inside = i < (rows - 1) * ld + cols && i % ld < cols;
            if (!inside)
            {
                Assert.True(data[i] == Padding, $"{context}: padding element {i} written");
            }
        }
    }

    internal static void Forward<TKernel>(Width width, HalfType type, ushort* z, int ldZ, ushort* o, int ldO, int rows, int cols)
        where TKernel : struct, IRowKernel
    {
        if (type == HalfType.BFloat16)
        {
            RunAt(width, new HalfRowToRowOperation<TKernel, BFloat16Format>(rows, cols, z, ldZ, o, ldO));
        }
        else
        {
            RunAt(width, new HalfRowToRowOperation<TKernel, Float16Format>(rows, cols, z, ldZ, o, ldO));
        }
    }

    [Theory]
    [MemberData(nameof(HalfFormats.WidthsAndTypes), MemberType = typeof(HalfFormats))]
    public void SoftmaxAndLogSoftmax(Width width, HalfType type)
    {
        foreach (int cols in Lengths)
        {
            foreach (bool isLog in new[] { false, true })
            {
                foreach (bool inPlace in new[] { false, true })
                {
                    int rows = 3, ld = cols + 3;
                    var random = new Random(cols * 4 + (isLog ? 2 : 0) + (inPlace ? 1 : 0));
                    ushort[] logits = HalfMatrix(type, rows, cols, ld, (_, _) => random.NextDouble() * 16 - 8);
                    double[][] input = [.. Enumerable.Range(0, rows).Select(r => Row(type, logits, r, cols, ld))];
                    ushort[] output = inPlace ? logits : HalfMatrix(type, rows, cols, ld, (_, _) => 0);
                    if (!inPlace)
                    {
                        Array.Fill(output, Padding);
                    }
                    fixed (ushort* z = logits)
                    fixed (ushort* o = output)
                    {
                        if (isLog)
                        {
                            Forward<LogSoftmaxRow>(width, type, z, ld, o, ld, rows, cols);
                        }
                        else
                        {
                            Forward<SoftmaxRow>(width, type, z, ld, o, ld, rows, cols);
                        }
                    }
                    string context = $"{(isLog ? "log_softmax" : "softmax")} {type} {width} cols={cols}{(inPlace ? " in place" : "")}";
                    for (int r = 0; r < rows; r++)
                    {
                        double[] expected = isLog ? Reference.LogSoftmax(input[r]) : Reference.Softmax(input[r]);
                        for (int c = 0; c < cols; c++)
                        {
                            double e = expected[c];
                            AssertHalf(type, output[r * ld + c], e, isLog ? 2e-6 * (1 + Math.Abs(e)) : 1e-6 * Math.Abs(e), $"{context} [{r},{c}]");
                        }
                    }
                    AssertPadding(output, rows, cols, ld, context);
                }
            }
        }
    }

    /// <summary>Rows of equal logits, with −∞, +∞, NaN, huge and tiny values.</summary>
    [Theory]
    [MemberData(nameof(HalfFormats.WidthsAndTypes), MemberType = typeof(HalfFormats))]
    public void EdgeRows(Width width, HalfType type)
    {
        double huge = type == HalfType.BFloat16 ? 1e38 : 60000;
        Func<int, int, double>[] kinds =
        [
            (_, _) => 1.5,
            (_, c) => c == 0 ? double.NegativeInfinity : c % 5,
            (_, c) => c == 1 ? double.PositiveInfinity : c % 5,
            (_, c) => c == 2 ? double.NaN : c % 5,
            (_, c) => c % 2 == 0 ? huge : -huge,
            (_, c) => (c % 7) * 1e-4,
            (_, c) => c == 3 ? 30 : 0, // a dominant class: the others' probabilities far below a bfloat16 ulp of 1
        ];
        foreach (int cols in new[] { 1, 3, 4, 9, 17, 33, 8195 })
        {
            for (int k = 0; k < kinds.Length; k++)
            {
                ushort[] logits = HalfMatrix(type, 1, cols, cols, kinds[k]);
                double[] input = Row(type, logits, 0, cols, cols);
                foreach (bool isLog in new[] { false, true })
                {
                    var output = new ushort[cols];
                    fixed (ushort* z = logits)
                    fixed (ushort* o = output)
                    {
                        if (isLog)
                        {
                            Forward<LogSoftmaxRow>(width, type, z, cols, o, cols, 1, cols);
                        }
                        else
                        {
                            Forward<SoftmaxRow>(width, type, z, cols, o, cols, 1, cols);
                        }
                    }
                    double[] expected = isLog ? Reference.LogSoftmax(input) : Reference.Softmax(input);
                    for (int c = 0; c < cols; c++)
                    {
                        double e = expected[c];
                        AssertHalf(type, output[c], e, isLog ? 2e-6 * (1 + Math.Abs(e)) : 1e-6 * Math.Abs(e),
                            $"{(isLog ? "log_softmax" : "softmax")} {type} {width} kind {k} cols={cols} [{c}]");
                    }
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(HalfFormats.WidthsAndTypes), MemberType = typeof(HalfFormats))]
    public void BackwardPasses(Width width, HalfType type)
    {
        foreach (int cols in Lengths)
        {
            foreach (bool isLog in new[] { false, true })
            {
                int rows = 3;
                var random = new Random(cols + (isLog ? 50_000 : 0));
                ushort[] g = HalfMatrix(type, rows, cols, cols, (_, _) => random.NextDouble() * 4 - 2);
                double[][] outputs = [.. Enumerable.Range(0, rows).Select(_ =>
                {
                    double[] z = [.. Enumerable.Range(0, cols).Select(_ => random.NextDouble() * 8 - 4)];
                    return isLog ? Reference.LogSoftmax(z) : Reference.Softmax(z);
                })];
                ushort[] o = HalfMatrix(type, rows, cols, cols, (r, c) => outputs[r][c]);
                ushort[] result = HalfMatrix(type, rows, cols, cols, (_, _) => 0);
                fixed (ushort* gp = g)
                fixed (ushort* op = o)
                fixed (ushort* rp = result)
                {
                    if (type == HalfType.BFloat16)
                    {
                        if (isLog) { RunAt(width, new HalfRowToRowOperation<LogSoftmaxBackwardRow, BFloat16Format>(rows, cols, gp, cols, op, cols, rp, cols)); }
                        else { RunAt(width, new HalfRowToRowOperation<SoftmaxBackwardRow, BFloat16Format>(rows, cols, gp, cols, op, cols, rp, cols)); }
                    }
                    else
                    {
                        if (isLog) { RunAt(width, new HalfRowToRowOperation<LogSoftmaxBackwardRow, Float16Format>(rows, cols, gp, cols, op, cols, rp, cols)); }
                        else { RunAt(width, new HalfRowToRowOperation<SoftmaxBackwardRow, Float16Format>(rows, cols, gp, cols, op, cols, rp, cols)); }
                    }
                }
                for (int r = 0; r < rows; r++)
                {
                    double[] gr = Row(type, g, r, cols, cols), or = Row(type, o, r, cols, cols);
                    double[] expected = isLog ? Reference.LogSoftmaxBackward(gr, or) : Reference.SoftmaxBackward(gr, or);
                    double dotAbs = gr.Zip(or, (a, b) => Math.Abs(a * b)).Sum(), sumAbs = gr.Sum(Math.Abs);
                    for (int c = 0; c < cols; c++)
                    {
                        double tolerance = isLog ? 1e-6 * (Math.Abs(gr[c]) + Math.Exp(or[c]) * sumAbs) : 1e-6 * Math.Abs(or[c]) * (Math.Abs(gr[c]) + dotAbs);
                        AssertHalf(type, result[r * cols + c], expected[c], tolerance, $"{(isLog ? "log_softmax" : "softmax")}_backward {type} {width} cols={cols} [{r},{c}]");
                    }
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(HalfFormats.WidthsAndTypes), MemberType = typeof(HalfFormats))]
    public void Jacobian(Width width, HalfType type)
    {
        foreach (int cols in new[] { 1, 2, 5, 8, 17, 33 })
        {
            var random = new Random(cols);
            ushort[] logits = HalfMatrix(type, 1, cols, cols, (_, _) => random.NextDouble() * 6 - 3);
            int ld = cols + 2;
            var jacobian = new ushort[(cols - 1) * ld + cols];
            Array.Fill(jacobian, Padding);
            fixed (ushort* z = logits)
            fixed (ushort* j = jacobian)
            {
                if (type == HalfType.BFloat16)
                {
                    RunAt(width, new HalfJacobianOperation<BFloat16Format>(cols, z, j, ld));
                }
                else
                {
                    RunAt(width, new HalfJacobianOperation<Float16Format>(cols, z, j, ld));
                }
            }
            double[,] expected = Reference.Jacobian(Row(type, logits, 0, cols, cols));
            double[] o = Reference.Softmax(Row(type, logits, 0, cols, cols));
            for (int a = 0; a < cols; a++)
            {
                for (int b = 0; b < cols; b++)
                {
                    AssertHalf(type, jacobian[a * ld + b], expected[a, b], 2e-6 * o[a] * ((a == b ? 1 : 0) + o[b]), $"jacobian {type} {width} cols={cols} [{a},{b}]");
                }
            }
            AssertPadding(jacobian, cols, cols, ld, $"jacobian {type} {width} cols={cols}");
        }
    }

    [Theory]
    [MemberData(nameof(HalfFormats.WidthsAndTypes), MemberType = typeof(HalfFormats))]
    public void CrossEntropy(Width width, HalfType type)
    {
        foreach (int cols in Lengths)
        {
            foreach (bool soft in new[] { false, true })
            {
                foreach (Reduction reduction in new[] { Reduction.None, Reduction.Mean })
                {
                    CrossEntropyCase(width, type, cols, soft, reduction);
                }
            }
        }
    }

    private static void CrossEntropyCase(Width width, HalfType type, int cols, bool soft, Reduction reduction)
    {
        int rows = 4, ld = cols + 1;
        var random = new Random(cols * 4 + (soft ? 2 : 0) + (int)reduction);
        ushort[] logits = HalfMatrix(type, rows, cols, ld, (_, _) => random.NextDouble() * 10 - 5);
        ushort[] targets = HalfMatrix(type, rows, cols, cols, (_, _) => random.NextDouble() * 2.0 / cols);
        long[] labels = [.. Enumerable.Range(0, rows).Select(r => r == 2 ? -100L : random.NextInt64(cols))];
        float[] weight = [.. Enumerable.Range(0, cols).Select(_ => (float)(0.5 + random.NextDouble()))];
        double[][] z = [.. Enumerable.Range(0, rows).Select(r => Row(type, logits, r, cols, ld))];
        double[][] p = [.. Enumerable.Range(0, rows).Select(r => Row(type, targets, r, cols, cols))];
        // Without smoothing, long rows take LongRow's chunk statistics (one read of the row).
        var options = new CrossEntropyOptions { Reduction = reduction, LabelSmoothing = reduction == Reduction.None ? 0 : 0.1 };
        var loss = new float[rows];
        ushort[] grad = logits; // in place
        fixed (ushort* zp = logits)
        fixed (ushort* pp = targets)
        fixed (long* t = labels)
        fixed (float* w = weight)
        fixed (float* l = loss)
        {
            LossOptions lossOptions = options.ToLossOptions();
            if (soft)
            {
                if (type == HalfType.BFloat16)
                {
                    RunAt(width, new HalfSoftTargetCrossEntropyOperation<BFloat16Format, LossOptions>(rows, cols, zp, ld, pp, cols, w, lossOptions, l, zp, ld));
                }
                else
                {
                    RunAt(width, new HalfSoftTargetCrossEntropyOperation<Float16Format, LossOptions>(rows, cols, zp, ld, pp, cols, w, lossOptions, l, zp, ld));
                }
            }
            else if (type == HalfType.BFloat16)
            {
                RunAt(width, new HalfHardLabelCrossEntropyOperation<BFloat16Format, long, LossOptions>(rows, cols, zp, ld, t, w, lossOptions, l, zp, ld));
            }
            else
            {
                RunAt(width, new HalfHardLabelCrossEntropyOperation<Float16Format, long, LossOptions>(rows, cols, zp, ld, t, w, lossOptions, l, zp, ld));
            }
        }
        double[] weights = [.. weight.Select(x => (double)x)];
        Reference.LossResult expected = soft
            ? Reference.SoftCrossEntropy(z, p, weights, options)
            : Reference.HardCrossEntropy(z, labels, weights, options);
        string context = $"cross_entropy{(soft ? "_soft" : "")} {type} {width} cols={cols} {reduction}";
        if (reduction == Reduction.None)
        {
            for (int r = 0; r < rows; r++)
            {
                Expect.Close(expected.RowLosses[r], loss[r], 2e-6 * (expected.TargetAbsMass[r] + expected.RowLossScale[r]) + 1e-30, context + " loss", r);
            }
        }
        else
        {
            double tolerance = 2e-6 * (expected.TargetAbsMass.Sum() + expected.RowLossScale.Sum()) / Math.Abs(expected.Divisor);
            Expect.Close(expected.Reduced, loss[0], tolerance, context + " mean loss");
        }
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < cols; c++)
            {
                AssertHalf(type, grad[r * ld + c], expected.Grad[r][c], 1e-6 * Math.Abs(expected.Scale) * expected.TargetAbsMass[r], $"{context} grad [{r},{c}]");
            }
        }
        AssertPadding(grad, rows, cols, ld, context);
    }

    /// <summary>Bad arguments: the float operation's status, and nothing written (the 16-bit
    /// output, the float32 loss).</summary>
    [Fact]
    public void BadInputWritesNothing()
    {
        int rows = 3, cols = 5;
        ushort[] logits = HalfMatrix(HalfType.BFloat16, rows, cols, cols, (r, c) => r + c);
        var output = new ushort[rows * cols];
        Array.Fill(output, Padding);
        var loss = new float[] { -1, -1, -1 };
        long[] labels = [0, 5, 1];
        var none = new CrossEntropyOptions { Reduction = Reduction.None }.ToLossOptions();
        fixed (ushort* z = logits)
        fixed (ushort* o = output)
        fixed (long* t = labels)
        fixed (float* l = loss)
        {
            Status Fails<TOperation>(TOperation operation)
                where TOperation : struct, IRowOperation<TOperation, float>
            {
                Assert.False(operation.Prepare(out _, out Failure? failure));
                return failure!.Status;
            }
            Assert.Equal(Status.Overlap, Fails(new HalfRowToRowOperation<SoftmaxRow, BFloat16Format>(rows, cols, z, cols, z + 1, cols)));
            Assert.Equal(Status.InvalidLeadingDimension, Fails(new HalfRowToRowOperation<SoftmaxRow, Float16Format>(rows, cols, z, cols - 1, o, cols)));
            Assert.Equal(Status.NullPointer, Fails(new HalfRowToRowOperation<LogSoftmaxBackwardRow, Float16Format>(rows, cols, z, cols, null, cols, o, cols)));
            Assert.Equal(Status.LabelOutOfRange, Fails(new HalfHardLabelCrossEntropyOperation<BFloat16Format, long, LossOptions>(rows, cols, z, cols, t, null, none, l, o, cols)));
            labels[1] = 2;
            // the float32 loss over bytes of the 16-bit grad
            Assert.Equal(Status.Overlap, Fails(new HalfHardLabelCrossEntropyOperation<BFloat16Format, long, LossOptions>(rows, cols, z, cols, t, null, none, (float*)(o + 4), o, cols)));
            // grad one element along the targets
            Assert.Equal(Status.Overlap, Fails(new HalfSoftTargetCrossEntropyOperation<Float16Format, LossOptions>(rows, cols, z, cols, o, cols, null, none, l, o + 1, cols)));
            Assert.Equal(Status.Overlap, Fails(new HalfJacobianOperation<BFloat16Format>(cols, z, z + 2, cols)));
        }
        Assert.All(output, x => Assert.Equal(Padding, x));
        Assert.All(loss, x => Assert.Equal(-1f, x));
    }
}
