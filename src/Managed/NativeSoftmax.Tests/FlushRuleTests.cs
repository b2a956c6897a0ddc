using System.Numerics;

namespace NativeSoftmax.Tests;

/// <summary>
/// The flush rule of nativesoftmax.h: every stored output whose magnitude is below the smallest
/// normal number (FLT_MIN, DBL_MIN) is ±0; no output is ever subnormal. Each
/// operation gets inputs whose outputs cross that threshold in small steps (some within rounding
/// of it), at every width, on short and long rows: below it an output must be ±0, above it within
/// the usual relative accuracy, and in the rounding band between, either.
/// </summary>
public class FlushRuleTests
{
    /// <summary>On both sides of every width's short-row range.</summary>
    private static readonly int[] Lengths = [2, 3, 5, 9, 17, 33, 65];

    /// <summary>Natural-log offsets from the input where an output equals the smallest normal number.</summary>
    private static readonly double[] Offsets = [-1.5, -0.7, -0.2, -0.01, -1e-4, -1e-5, -1e-6, 0, 1e-6, 1e-5, 1e-4, 0.01, 0.2, 0.7, 1.5];

    private static double MinNormal<T>() => typeof(T) == typeof(float) ? 1.1754943508222875e-38 : 2.2250738585072014e-308;

    private static double LogMinNormal<T>() => Math.Log(MinNormal<T>());

    /// <summary>A logit that is 0 for exp: far below ln of the smallest normal number of either type.</summary>
    private const double Far = -1000;

    /// <summary>How many checked outputs lay just below and just above the threshold (within a factor 16).</summary>
    private sealed class Tally
    {
        public int Below;
        public int Above;

        public void AssertBothSides(string context) =>
            Assert.True(Below > 0 && Above > 0, $"{context}: {Below} outputs checked just below the smallest normal number, {Above} just above");
    }

    private static void Check<T>(double exact, T got, double relative, string context, Tally tally)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        double minNormal = MinNormal<T>(), g = double.CreateTruncating(got), magnitude = Math.Abs(exact);
        Assert.True(g == 0 || Math.Abs(g) >= minNormal, $"{context}: {g:R} is subnormal (exact {exact:R})");
        bool close = Math.Abs(g - exact) <= relative * magnitude;
        if (magnitude >= minNormal * (1 + 2 * relative))
        {
            Assert.True(close, $"{context}: got {g:R}, exact {exact:R} (relative tolerance {relative:E1})");
            tally.Above += magnitude < 16 * minNormal ? 1 : 0;
        }
        else if (magnitude < minNormal * (1 - 2 * relative))
        {
            Assert.True(g == 0, $"{context}: got {g:R}, exact {exact:R} is below the smallest normal number: must be ±0");
            tally.Below += magnitude > 0 ? 1 : 0;
        }
        else
        {
            Assert.True(g == 0 || close, $"{context}: got {g:R}, exact {exact:R} within rounding of the smallest normal number: must be 0 or close");
        }
    }

    private static void CheckRows<T>(Matrix<T> got, double[][] exact, double relative, string context, Tally tally)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        for (int r = 0; r < got.Rows; r++)
        {
            for (int c = 0; c < got.Cols; c++)
            {
                Check(exact[r][c], got[r, c], relative, $"{context} [{r}, {c}]", tally);
            }
        }
    }

    private static double Relative<T>() => typeof(T) == typeof(float) ? 2e-6 : 4e-15;

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

    /// <summary>
    /// Logit rows [0, (0,) d, Far…] with d = ln(m·k) + offset (m the smallest normal number, k the
    /// zeros before d): the probability of d crosses m; log_softmax of the first class
    /// (−log1p(e^d) for k = 1) and the cross-entropy with label 0 cross it too.
    /// </summary>
    private static Matrix<T> CrossingLogits<T>(int cols)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int zeros = cols >= 3 ? 2 : 1;
        var logits = new Matrix<T>(2 * Offsets.Length, cols, cols);
        for (int r = 0; r < logits.Rows; r++)
        {
            int k = r < Offsets.Length ? 1 : zeros;
            int at = k + r % (cols - k);
            double d = LogMinNormal<T>() + Math.Log(k) + Offsets[r % Offsets.Length];
            for (int c = 0; c < cols; c++)
            {
                logits[r, c] = T.CreateTruncating(c < k ? 0 : c == at ? d : Far);
            }
        }
        return logits;
    }

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void SoftmaxAndLogSoftmax(Width width, string dtype) =>
        ForType(dtype, _ => Forward<float>(width), _ => Forward<double>(width));

    private static void Forward<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        Tally softmax = new(), logSoftmax = new();
        foreach (int cols in Lengths)
        {
            string context = $"width={width} dtype={TestData.Name<T>()} cols={cols}";
            Matrix<T> logits = CrossingLogits<T>(cols);
            double[][] z = logits.RowsAsDouble();
            var result = new Matrix<T>(logits.Rows, cols, cols);
            Ops.Softmax(width, logits, result);
            CheckRows(result, z.Select(Reference.Softmax).ToArray(), Relative<T>(), "softmax " + context, softmax);
            Ops.LogSoftmax(width, logits, result);
            CheckRows(result, z.Select(Reference.LogSoftmax).ToArray(), Relative<T>(), "log_softmax " + context, logSoftmax);
        }
        softmax.AssertBothSides($"softmax {width} {TestData.Name<T>()}");
        logSoftmax.AssertBothSides($"log_softmax {width} {TestData.Name<T>()}");
    }

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void BackwardPasses(Width width, string dtype) =>
        ForType(dtype, _ => Backward<float>(width), _ => Backward<double>(width));

    private static void Backward<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        Tally softmax = new(), logSoftmax = new();
        double minNormal = MinNormal<T>();
        int scale = typeof(T) == typeof(float) ? 60 : 500;
        foreach (int cols in Lengths)
        {
            string context = $"width={width} dtype={TestData.Name<T>()} cols={cols}";
            int rows = 2 * Offsets.Length;
            // softmax_backward: o = [a, ½, 0…] and g = [c, 0…] with a = 2^−scale give o ⊙ (g − ⟨g, o⟩) =
            // [a·c·(1 − a), −a·c/2, 0…]; c puts a·c (first half of the rows) or a·c/2 across m.
            var output = new Matrix<T>(rows, cols, cols).Fill((r, c) => c == 0 ? Math.ScaleB(1, -scale) : c == 1 ? 0.5 : 0);
            var gradOutput = new Matrix<T>(rows, cols, cols).Fill((r, c) =>
                c == 0 ? Math.ScaleB(minNormal, scale) * (r < Offsets.Length ? 1 : 2) * Math.Exp(Offsets[r % Offsets.Length]) : 0);
            var result = new Matrix<T>(rows, cols, cols);
            Ops.SoftmaxBackward(width, gradOutput, output, result);
            CheckRows(result, gradOutput.RowsAsDouble().Zip(output.RowsAsDouble(), Reference.SoftmaxBackward).ToArray(),
                Relative<T>(), "softmax_backward " + context, softmax);

            // log_softmax_backward: g = [0, ½, 0…] and y = [ln(2m) + offset, Far…] give g − e^y·Σg =
            // [−e^y/2 (crossing −m), ½, 0…].
            var logOutput = new Matrix<T>(rows, cols, cols).Fill((r, c) =>
                c == 0 ? Math.Log(2 * minNormal) + Offsets[r % Offsets.Length] * (r < Offsets.Length ? 1 : 0.5) : Far);
            gradOutput.Fill((_, c) => c == 1 ? 0.5 : 0);
            Ops.LogSoftmaxBackward(width, gradOutput, logOutput, result);
            CheckRows(result, gradOutput.RowsAsDouble().Zip(logOutput.RowsAsDouble(), Reference.LogSoftmaxBackward).ToArray(),
                Relative<T>(), "log_softmax_backward " + context, logSoftmax);
        }
        softmax.AssertBothSides($"softmax_backward {width} {TestData.Name<T>()}");
        logSoftmax.AssertBothSides($"log_softmax_backward {width} {TestData.Name<T>()}");
    }

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void Jacobian(Width width, string dtype) =>
        ForType(dtype, _ => JacobianOf<float>(width), _ => JacobianOf<double>(width));

    private static void JacobianOf<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var tally = new Tally();
        foreach (int cols in Lengths)
        {
            Matrix<T> logits = CrossingLogits<T>(cols);
            for (int r = 0; r < Offsets.Length; r++) // k = 1: J[0,0], J[d,d] ≈ e^d and J[0,d] ≈ −e^d cross m
            {
                T[] row = Enumerable.Range(0, cols).Select(c => logits[r, c]).ToArray();
                double[,] exact = Reference.Jacobian(row.AsDouble());
                var jacobian = new Matrix<T>(cols, cols, cols);
                Ops.Jacobian(width, row, jacobian);
                CheckRows(jacobian, Enumerable.Range(0, cols).Select(i => Enumerable.Range(0, cols).Select(j => exact[i, j]).ToArray()).ToArray(),
                    Relative<T>(), $"softmax_jacobian width={width} dtype={TestData.Name<T>()} cols={cols} offset={Offsets[r]}", tally);
            }
        }
        tally.AssertBothSides($"softmax_jacobian {width} {TestData.Name<T>()}");
    }

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void CrossEntropyLossesAndGradients(Width width, string dtype) =>
        ForType(dtype, _ => CrossEntropy<float>(width), _ => CrossEntropy<double>(width));

    private static void CrossEntropy<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        Tally hard = new(), soft = new(), reduced = new();
        var none = new CrossEntropyOptions { Reduction = Reduction.None };
        foreach (int cols in Lengths)
        {
            string context = $"width={width} dtype={TestData.Name<T>()} cols={cols}";
            Matrix<T> logits = CrossingLogits<T>(cols);
            double[][] z = logits.RowsAsDouble();
            long[] labels = new long[logits.Rows]; // class 0: loss log1p(e^d) and gradient ∓e^d cross m (for k = 1)
            var loss = new T[logits.Rows];
            var grad = new Matrix<T>(logits.Rows, cols, cols);
            Ops.CrossEntropy(width, logits, labels, null, none, loss, grad);
            Reference.LossResult expected = Reference.HardCrossEntropy(z, labels, null, none);
            CheckRows(new Matrix<T>(1, loss.Length, loss.Length).Fill((_, c) => double.CreateTruncating(loss[c])), [expected.RowLosses],
                Relative<T>(), "cross_entropy loss " + context, hard);
            CheckRows(grad, expected.Grad, Relative<T>(), "cross_entropy grad " + context, hard);

            var target = new Matrix<T>(logits.Rows, cols, cols).Fill((_, c) => c == 0 ? 1 : 0);
            Ops.SoftCrossEntropy(width, logits, target, null, none, loss, grad);
            expected = Reference.SoftCrossEntropy(z, target.RowsAsDouble(), null, none);
            CheckRows(new Matrix<T>(1, loss.Length, loss.Length).Fill((_, c) => double.CreateTruncating(loss[c])), [expected.RowLosses],
                Relative<T>(), "cross_entropy_soft loss " + context, soft);
            CheckRows(grad, expected.Grad, Relative<T>(), "cross_entropy_soft grad " + context, soft);

            // The reduced loss of one such row (sum) crosses m as well.
            var sum = new CrossEntropyOptions { Reduction = Reduction.Sum };
            for (int r = 0; r < Offsets.Length; r++)
            {
                T[] total = [Matrix<T>.Sentinel];
                var row = new Matrix<T>(1, cols, cols).Fill((_, c) => z[r][c]);
                Ops.CrossEntropy(width, row, [0], null, sum, total, null);
                Check(Reference.HardCrossEntropy([z[r]], [0], null, sum).Reduced, total[0], Relative<T>(), $"cross_entropy sum {context} row {r}", reduced);
            }
        }
        hard.AssertBothSides($"cross_entropy {width} {TestData.Name<T>()}");
        soft.AssertBothSides($"cross_entropy_soft {width} {TestData.Name<T>()}");
        reduced.AssertBothSides($"cross_entropy sum {width} {TestData.Name<T>()}");
    }

    /// <summary>
    /// No bfloat16 output is subnormal. bfloat16's narrowing does not test for the flush rule: its
    /// smallest normal number is float32's, and what it narrows already follows float32's rule
    /// (<c>BFloat16Format.NarrowFlushed</c>). This checks that precondition end to end, on inputs
    /// whose outputs reach the smallest normal binade: every operation, short and long rows.
    /// </summary>
    [Fact]
    public void BFloat16OutputsAreNeverSubnormal()
    {
        var random = new Random(3);
        foreach (int cols in new[] { 7, 100, 8192 })
        {
            int rows = 8;
            var g = new BFloat16[rows * cols];
            var o = new BFloat16[rows * cols];
            var logits = new BFloat16[rows * cols];
            for (int i = 0; i < g.Length; i++)
            {
                g[i] = (BFloat16)(float)((random.NextDouble() - 0.5) * Math.Pow(2, -120 + random.Next(0, 12)));
                o[i] = (BFloat16)(float)(random.NextDouble() * Math.Pow(2, -random.Next(0, 10)));
                logits[i] = (BFloat16)(float)(random.NextDouble() * 200 - 100);
            }
            var output = new BFloat16[rows * cols];
            long smallestBinade = 0;
            void Check(BFloat16[] values, string what)
            {
                int subnormal = values.Count(v => (v.Bits & 0x7F80) == 0 && (v.Bits & 0x7F) != 0);
                Assert.True(subnormal == 0, $"{what} cols={cols}: {subnormal} subnormal bfloat16 outputs");
                smallestBinade += values.Count(v => (v.Bits & 0x7F80) == 0x80);
            }
            SoftmaxPrimitives.SoftmaxBackward(rows, cols, g, cols, o, cols, output, cols);
            Check(output, "softmax_backward");
            SoftmaxPrimitives.LogSoftmaxBackward(rows, cols, g, cols, o, cols, output, cols);
            Check(output, "log_softmax_backward");
            SoftmaxPrimitives.Softmax(rows, cols, logits, cols, output, cols);
            Check(output, "softmax");
            SoftmaxPrimitives.LogSoftmax(rows, cols, logits, cols, output, cols);
            Check(output, "log_softmax");
            long[] labels = [.. Enumerable.Range(0, rows).Select(r => (long)(r * 3 % cols))];
            float[] weight = [.. Enumerable.Range(0, cols).Select(j => (float)(random.NextDouble() * 2 - 0.5))];
            foreach (double scale in new[] { 1e-36, 3e-37, 1e-37, 2e-38 })
            {
                foreach (double smoothing in new[] { 0.0, 0.1 })
                {
                    var options = new CrossEntropyOptions { Reduction = Reduction.Sum, LabelSmoothing = smoothing, GradScale = scale };
                    SoftmaxPrimitives.CrossEntropy(rows, cols, logits, cols, labels, weight, new float[1], output, cols, options);
                    Check(output, $"cross_entropy grad_scale={scale} smoothing={smoothing}");
                    SoftmaxPrimitives.CrossEntropy(rows, cols, logits, cols, o, cols, weight, new float[1], output, cols, options);
                    Check(output, $"cross_entropy_soft grad_scale={scale} smoothing={smoothing}");
                }
            }
            if (cols <= 100)
            {
                var jacobian = new BFloat16[cols * cols];
                SoftmaxPrimitives.SoftmaxJacobian(logits.AsSpan(0, cols), jacobian, cols);
                Check(jacobian, "softmax_jacobian");
            }
            Assert.True(smallestBinade > 0, $"cols={cols}: no output in the smallest normal binade; the check proves nothing");
        }
    }
}
