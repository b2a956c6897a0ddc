using System.Numerics;
using NativeSoftmax.Kernels;
using NativeSoftmax.Operations;

namespace NativeSoftmax.Tests;

/// <summary>
/// The edge cases nativesoftmax.h documents, at every width and through the public API:
/// non-finite rows, extreme logits, one class, no rows, every row ignored, zero soft targets.
/// </summary>
public class EdgeCaseTests
{
    /// <summary>Lengths that put the special element in the scalar path, a tail and a full vector.</summary>
    private static readonly int[] Lengths = [1, 2, 3, 5, 8, 13, 16, 17, 25, 33, 49];

    private static void ForType(string dtype, Action<float> single, Action<double> wide)
    {
        if (dtype == "float32")
        {
            single(0);
        }
        else
        {
            wide(0);
        }
    }

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void NonFiniteRowsGiveNaN(Width width, string dtype) =>
        ForType(dtype, _ => NonFiniteRows<float>(width), _ => NonFiniteRows<double>(width));

    private static void NonFiniteRows<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int checkedRows = 0;
        foreach (int cols in Lengths)
        {
            for (int position = 0; position < cols; position += Math.Max(1, cols / 3))
            {
                int seed = 700_000 + 100 * cols + position;
                // Row 0: all −∞. Row 1: one +∞. Row 2: one NaN. Row 3: finite with one −∞ (when cols > 1).
                Matrix<T> logits = TestData.Uniform<T>(seed, 4, cols, cols, -10, 10);
                for (int c = 0; c < cols; c++)
                {
                    logits[0, c] = T.NegativeInfinity;
                }
                logits[1, position] = T.PositiveInfinity;
                logits[2, position] = T.NaN;
                logits[3, position] = T.NegativeInfinity;
                string context = $"width={width} dtype={TestData.Name<T>()} cols={cols} position={position} seed={seed}";
                double[][] z = logits.RowsAsDouble();

                var probabilities = new Matrix<T>(4, cols, cols);
                Ops.Softmax(width, logits, probabilities);
                Expect.Rows(probabilities, z.Select(Reference.Softmax).ToArray(), (_, _, e) => 1e-5 * Math.Abs(e), "softmax " + context);
                var logProbabilities = new Matrix<T>(4, cols, cols);
                Ops.LogSoftmax(width, logits, logProbabilities);
                Expect.Rows(logProbabilities, z.Select(Reference.LogSoftmax).ToArray(), (_, _, e) => 1e-5 * (1 + Math.Abs(e)), "log_softmax " + context);
                for (int r = 0; r < 3; r++)
                {
                    for (int c = 0; c < cols; c++)
                    {
                        Assert.True(T.IsNaN(probabilities[r, c]) && T.IsNaN(logProbabilities[r, c]),
                            $"row {r} (all -inf / +inf / NaN) must be NaN: softmax {probabilities[r, c]}, log_softmax {logProbabilities[r, c]}, {context}");
                    }
                }
                if (cols > 1)
                {
                    Assert.True(probabilities[3, position] == T.Zero && T.IsNegativeInfinity(logProbabilities[3, position]),
                        $"a -inf logit in a finite row gives 0 and -inf, got {probabilities[3, position]} and {logProbabilities[3, position]}, {context}");
                }

                // Their loss is NaN too (label away from the special element where possible).
                var loss = new T[4];
                long[] labels = [.. Enumerable.Repeat((long)((position + 1) % cols), 4)];
                Ops.CrossEntropy(width, logits, labels, null, new CrossEntropyOptions { Reduction = Reduction.None }, loss, null);
                for (int r = 0; r < 3; r++)
                {
                    Assert.True(T.IsNaN(loss[r]), $"cross_entropy row {r} must be NaN, got {loss[r]}, {context}");
                }
                checkedRows += 4;
            }
        }
        Assert.True(checkedRows > 4 * Lengths.Length, $"only {checkedRows} rows checked");
    }

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void ExtremeLogitsGiveFiniteCorrectResults(Width width, string dtype) =>
        ForType(dtype, _ => ExtremeLogits<float>(width, 1e38), _ => ExtremeLogits<double>(width, 1e308));

    private static void ExtremeLogits<T>(Width width, double big)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int count = 0;
        foreach (int cols in Lengths)
        {
            int seed = 710_000 + cols;
            var random = new Random(seed);
            double[] choices = [big, -big, big / 2, 0, big];
            var logits = new Matrix<T>(2, cols, cols).Fill((_, _) => choices[random.Next(choices.Length)]);
            logits[1, cols - 1] = T.CreateTruncating(-big);
            string context = $"width={width} dtype={TestData.Name<T>()} cols={cols} seed={seed} logits ±{big:E0}";
            double[][] z = logits.RowsAsDouble();

            var probabilities = new Matrix<T>(2, cols, cols);
            Ops.Softmax(width, logits, probabilities);
            Expect.Rows(probabilities, z.Select(Reference.Softmax).ToArray(), (_, _, e) => 1e-6 * Math.Abs(e), "softmax " + context);
            var logProbabilities = new Matrix<T>(2, cols, cols);
            Ops.LogSoftmax(width, logits, logProbabilities);
            Expect.Rows(logProbabilities, z.Select(Reference.LogSoftmax).ToArray(), (_, _, e) => 2e-6 * (1 + Math.Abs(e)), "log_softmax " + context);

            // A label on the smallest logit: the loss is 2·big, finite in float32 (and +∞ for 2e308 in float64, as exact arithmetic rounds).
            var loss = new T[2];
            long[] labels = [0, cols - 1];
            Ops.CrossEntropy(width, logits, labels, null, new CrossEntropyOptions { Reduction = Reduction.None }, loss, null);
            Reference.LossResult expected = Reference.HardCrossEntropy(z, labels, null, new CrossEntropyOptions { Reduction = Reduction.None });
            for (int r = 0; r < 2; r++)
            {
                double e = double.CreateTruncating(T.CreateSaturating(expected.RowLosses[r]));   // rounded as T can hold it
                Expect.Close(e, double.CreateTruncating(loss[r]), 2e-6 * (1 + Math.Abs(e)), "cross_entropy loss " + context, r);
            }
            count++;
        }
        Assert.Equal(Lengths.Length, count);
    }

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void OneClassGivesOneZeroAndZeroLoss(Width width, string dtype) => ForType(dtype, _ => OneClass<float>(width), _ => OneClass<double>(width));

    private static void OneClass<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        string context = $"cols=1 width={width} dtype={TestData.Name<T>()}";
        var logits = new Matrix<T>(3, 1, 2).Fill((r, _) => (r - 1) * 1e4);
        var probabilities = new Matrix<T>(3, 1, 1);
        var logProbabilities = new Matrix<T>(3, 1, 1);
        Ops.Softmax(width, logits, probabilities);
        Ops.LogSoftmax(width, logits, logProbabilities);
        var loss = new T[3];
        var grad = new Matrix<T>(3, 1, 1);
        Ops.CrossEntropy(width, logits, [0, 0, 0], null, new CrossEntropyOptions { Reduction = Reduction.None }, loss, grad);
        for (int r = 0; r < 3; r++)
        {
            Assert.True(probabilities[r, 0] == T.One, $"{context} row {r}: softmax {probabilities[r, 0]}, expected exactly 1");
            Assert.True(logProbabilities[r, 0] == T.Zero, $"{context} row {r}: log_softmax {logProbabilities[r, 0]}, expected exactly 0");
            Assert.True(loss[r] == T.Zero, $"{context} row {r}: cross_entropy loss {loss[r]}, expected exactly 0");
            Assert.True(T.Abs(grad[r, 0]) <= T.CreateTruncating(1e-15), $"{context} row {r}: gradient {grad[r, 0]}, expected 0");
        }
        probabilities.AssertPaddingIntact(context);
    }

    /// <summary>Through the operations, whose pointers are real buffers; the public API is
    /// <see cref="ValidationTests"/>' business (empty spans are null pointers there).</summary>
    [Theory, MemberData(nameof(ExpAccuracyTests.KernelWidthsAndTypes), MemberType = typeof(ExpAccuracyTests))]
    public void NoRowsWritesNothing(Width width, string dtype) => ForType(dtype, _ => NoRows<float>(width), _ => NoRows<double>(width));

    private static void NoRows<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        foreach (int cols in new[] { 1, 7, 33 })
        {
            string context = $"rows=0 cols={cols} width={width} dtype={TestData.Name<T>()}";
            // Sentinel-filled buffers larger than the (empty) matrices: nothing may be written.
            var logits = new Matrix<T>(1, cols, cols);
            var output = new Matrix<T>(1, cols, cols);
            Matrix<T> noLogits = Wrap(logits, 0), noOutput = Wrap(output, 0);
            Ops.Softmax(width, noLogits, noOutput);
            Ops.LogSoftmax(width, noLogits, noOutput);
            Ops.SoftmaxBackward(width, noLogits, Wrap(logits.Clone(), 0), noOutput);
            Ops.LogSoftmaxBackward(width, noLogits, Wrap(logits.Clone(), 0), noOutput);
            output.AssertUntouched(context);

            long[] labels = [3];   // one element so the target pointer is not null; rows = 0 reads none
            foreach (var (reduction, expected) in new[] { (Reduction.Mean, double.NaN), (Reduction.Sum, 0.0), (Reduction.None, double.NaN) })
            {
                var options = new CrossEntropyOptions { Reduction = reduction };
                T[] loss = [Matrix<T>.Sentinel];
                var grad = new Matrix<T>(1, cols, cols);
                Ops.CrossEntropy(width, noLogits, labels, null, options, loss, Wrap(grad, 0));
                grad.AssertUntouched($"{context} cross_entropy {reduction} grad");
                CheckReduced(loss[0], reduction, expected, $"{context} cross_entropy {reduction}");

                loss = [Matrix<T>.Sentinel];
                Ops.SoftCrossEntropy(width, noLogits, Wrap(logits.Clone(), 0), null, options, loss, Wrap(grad, 0));
                grad.AssertUntouched($"{context} cross_entropy_soft {reduction} grad");
                CheckReduced(loss[0], reduction, expected, $"{context} cross_entropy_soft {reduction}");
            }
        }
    }

    /// <summary>
    /// rows == 0 with NULL pointers (torch.empty(0, C).data_ptr() is 0): accepted, nothing
    /// written, and a reduced loss still gets its value (NaN for the mean, 0 for the sum).
    /// </summary>
    [Theory, MemberData(nameof(ExpAccuracyTests.KernelWidthsAndTypes), MemberType = typeof(ExpAccuracyTests))]
    public void NoRowsAcceptsNullPointers(Width width, string dtype) =>
        ForType(dtype, _ => NullPointersWithoutRows<float>(width), _ => NullPointersWithoutRows<double>(width));

    private static unsafe void NullPointersWithoutRows<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        foreach (int cols in new[] { 1, 7, 33 })
        {
            string context = $"rows=0, NULL pointers, cols={cols} width={width} dtype={TestData.Name<T>()}";
            Ops.RunAt<RowToRowOperation<SoftmaxRow, T>, T>(width, new(0, cols, null, cols, null, cols));
            Ops.RunAt<RowToRowOperation<LogSoftmaxRow, T>, T>(width, new(0, cols, null, cols, null, cols));
            Ops.RunAt<RowToRowOperation<SoftmaxBackwardRow, T>, T>(width, new(0, cols, null, cols, null, cols, null, cols));
            Ops.RunAt<RowToRowOperation<LogSoftmaxBackwardRow, T>, T>(width, new(0, cols, null, cols, null, cols, null, cols));
            foreach (var (reduction, expected) in new[] { (Reduction.Mean, double.NaN), (Reduction.Sum, 0.0), (Reduction.None, double.NaN) })
            {
                LossOptions options = new CrossEntropyOptions { Reduction = reduction }.ToLossOptions();
                T loss = Matrix<T>.Sentinel;
                Ops.RunAt<HardLabelCrossEntropyOperation<T, long, LossOptions>, T>(width, new(0, cols, null, cols, null, null, options, &loss, null, cols));
                CheckReduced(loss, reduction, expected, $"{context} cross_entropy {reduction}");
                loss = Matrix<T>.Sentinel;
                Ops.RunAt<SoftTargetCrossEntropyOperation<T, LossOptions>, T>(width, new(0, cols, null, cols, null, cols, null, options, &loss, null, cols));
                CheckReduced(loss, reduction, expected, $"{context} cross_entropy_soft {reduction}");
                // Neither loss nor gradient asked for: nothing to do, and no error.
                Ops.RunAt<HardLabelCrossEntropyOperation<T, long, LossOptions>, T>(width, new(0, cols, null, cols, null, null, options, null, null, cols));
                Ops.RunAt<SoftTargetCrossEntropyOperation<T, LossOptions>, T>(width, new(0, cols, null, cols, null, cols, null, options, null, null, cols));
            }
        }
    }

    private static void CheckReduced<T>(T loss, Reduction reduction, double expected, string context)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        bool ok = reduction == Reduction.None ? loss == Matrix<T>.Sentinel
            : double.IsNaN(expected) ? T.IsNaN(loss) : double.CreateTruncating(loss) == expected;
        Assert.True(ok, $"{context}: loss {loss}, expected {(reduction == Reduction.None ? "untouched" : expected.ToString())}");
    }

    /// <summary>A view with another row count over the same buffer (for rows = 0 with real memory).</summary>
    private static Matrix<T> Wrap<T>(Matrix<T> m, int rows)
        where T : unmanaged, IBinaryFloatingPointIeee754<T> => Matrix<T>.View(m, rows);

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void EveryRowIgnored(Width width, string dtype) => ForType(dtype, _ => AllIgnored<float>(width), _ => AllIgnored<double>(width));

    private static void AllIgnored<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        foreach (int cols in new[] { 1, 5, 17, 40 })
        {
            string context = $"every row ignored, cols={cols} width={width} dtype={TestData.Name<T>()}";
            Matrix<T> logits = TestData.Uniform<T>(cols, 3, cols, cols, -5, 5);
            var grad = new Matrix<T>(3, cols, cols + 1);
            T[] loss = [Matrix<T>.Sentinel];
            var options = new CrossEntropyOptions { Reduction = Reduction.Mean, LabelSmoothing = 0.1 };
            Ops.CrossEntropy(width, logits, [-100, -100, -100], TestData.Vector<T>(1, cols, 0.5, 2), options, loss, grad);
            Assert.True(T.IsNaN(loss[0]), $"{context}: mean loss {loss[0]}, expected NaN");
            Expect.Rows(grad, Enumerable.Repeat(new double[cols], 3).ToArray(), (_, _, _) => 0, context + " grad");

            options = options with { Reduction = Reduction.Sum };
            Ops.CrossEntropy(width, logits, [-100, -100, -100], null, options, loss, grad);
            Assert.True(loss[0] == T.Zero, $"{context}: sum loss {loss[0]}, expected 0");
        }
    }

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void AllZeroSoftTargetRow(Width width, string dtype) => ForType(dtype, _ => ZeroTargets<float>(width), _ => ZeroTargets<double>(width));

    private static void ZeroTargets<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        foreach (int cols in new[] { 1, 5, 17, 40 })
        {
            string context = $"all-zero soft target row, cols={cols} width={width} dtype={TestData.Name<T>()}";
            Matrix<T> logits = TestData.Uniform<T>(cols, 2, cols, cols, -5, 5);
            logits[0, 0] = T.NegativeInfinity;   // with zero target: adds 0, not NaN
            logits[0, cols - 1] = T.CreateTruncating(1.0);   // ... in a row that is not all −∞ (that row would be NaN)
            var target = new Matrix<T>(2, cols, cols).Fill((_, _) => 0);
            var grad = new Matrix<T>(2, cols, cols);
            var loss = new T[2];
            Ops.SoftCrossEntropy(width, logits, target, TestData.Vector<T>(3, cols, 0.5, 2), new CrossEntropyOptions { Reduction = Reduction.None }, loss, grad);
            Assert.True(loss[0] == T.Zero && loss[1] == T.Zero, $"{context}: losses {loss[0]}, {loss[1]}, expected 0");
            Expect.Rows(grad, Enumerable.Repeat(new double[cols], 2).ToArray(), (_, _, _) => 0, context + " grad");

            // A row that asks for nothing contributes nothing even when its logits are all −∞
            // (which would otherwise make it NaN): loss 0 and a zero gradient, as the header decides.
            for (int j = 0; j < cols; j++)
            {
                logits[1, j] = T.NegativeInfinity;
            }
            grad.Fill((_, _) => 7);
            Ops.SoftCrossEntropy(width, logits, target, default, new CrossEntropyOptions { Reduction = Reduction.None }, loss, grad);
            Assert.True(loss[1] == T.Zero, $"{context}, all −inf logits: loss {loss[1]}, expected 0");
            for (int j = 0; j < cols; j++)
            {
                Assert.True(grad[1, j] == T.Zero, $"{context}, all −inf logits: grad[1, {j}] = {grad[1, j]}, expected 0");
            }
        }
    }
}
