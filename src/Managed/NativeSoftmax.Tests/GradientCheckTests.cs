namespace NativeSoftmax.Tests;

/// <summary>
/// The library's gradients against central finite differences of the library's own float64 loss
/// (and forward passes): (L(z + h·e_k) − L(z − h·e_k)) / 2h, agreeing to 1e-7. Independent of
/// the reference: this checks that the gradient is the derivative of the loss that is computed.
/// </summary>
public class GradientCheckTests
{
    private const double Step = 1e-5;       // central differences: error ~ h²·L''' ≈ 1e-10, rounding ~ 1e-16/h ≈ 1e-11
    private const double Agreement = 1e-7;

    public static TheoryData<Width> AllWidths() => new(Cases.AllWidths);

    private sealed record LossCase(string Name, Reduction Reduction, double Smoothing, double GradScale, bool Weights);

    private static readonly LossCase[] LossCases =
    [
        new("mean", Reduction.Mean, 0, 1, false),
        new("mean, weights, smoothing 0.2", Reduction.Mean, 0.2, 1, true),
        new("sum, weights, grad scale 0.5", Reduction.Sum, 0, 0.5, true),
        new("sum, smoothing 1", Reduction.Sum, 1, 1, false),
        new("mean, negative weights, smoothing 0.1, grad scale -2", Reduction.Mean, 0.1, -2, true),
    ];

    private static readonly int[] Lengths = [1, 2, 3, 7, 16, 17, 33];

    /// <summary>Central difference of f at z along every coordinate.</summary>
    private static double[] NumericalGradient(double[] z, Func<double[], double> f) =>
        Enumerable.Range(0, z.Length).Select(k =>
        {
            double[] plus = (double[])z.Clone(), minus = (double[])z.Clone();
            plus[k] += Step;
            minus[k] -= Step;
            return (f(plus) - f(minus)) / (2 * Step);
        }).ToArray();

    private static void Agree(double[] numerical, double[] analytic, string context)
    {
        for (int k = 0; k < numerical.Length; k++)
        {
            Expect.Close(numerical[k], analytic[k], Agreement * Math.Max(1, Math.Abs(numerical[k])), context, col: k);
        }
    }

    [Theory, MemberData(nameof(AllWidths))]
    public void HardLabelGradientIsTheDerivativeOfTheLoss(Width width)
    {
        int count = 0;
        foreach (LossCase loss in LossCases)
        {
            foreach (int cols in Lengths)
            {
                const int rows = 3;
                int seed = 900_000 + 100 * cols + Array.IndexOf(LossCases, loss);
                string context = $"cross_entropy gradient vs finite differences, width={width} dtype=float64 cols={cols} rows={rows} seed={seed} ({loss.Name})";
                double[]? weight = loss.Weights ? TestData.Vector<double>(seed, cols, loss.Name.Contains("negative") ? -1 : 0.2, 2) : null;
                long[] target = TestData.Labels(seed + 1, rows, cols, ignoreIndex: -100);
                target[0] = cols - 1;   // at least one row is not ignored
                var options = new CrossEntropyOptions { Reduction = loss.Reduction, LabelSmoothing = loss.Smoothing, GradScale = loss.GradScale };
                double[] z = TestData.Uniform<double>(seed + 2, rows, cols, cols, -4, 4).Span.ToArray();

                double Loss(double[] logits)
                {
                    double[] l = [double.NaN];
                    Ops.CrossEntropy(width, Flat(logits, rows, cols), target, weight, options with { GradScale = 1 }, l, null);
                    return loss.GradScale * l[0];
                }
                var grad = new Matrix<double>(rows, cols, cols);
                Ops.CrossEntropy(width, Flat(z, rows, cols), target, weight, options, [0.0], grad);
                Agree(NumericalGradient(z, Loss), grad.Span.ToArray(), context);
                count++;
            }
        }
        Assert.Equal(LossCases.Length * Lengths.Length, count);
    }

    [Theory, MemberData(nameof(AllWidths))]
    public void SoftTargetGradientIsTheDerivativeOfTheLoss(Width width)
    {
        int count = 0;
        foreach (LossCase loss in LossCases)
        {
            foreach (int cols in Lengths)
            {
                const int rows = 3;
                int seed = 910_000 + 100 * cols + Array.IndexOf(LossCases, loss);
                string context = $"cross_entropy_soft gradient vs finite differences, width={width} dtype=float64 cols={cols} rows={rows} seed={seed} ({loss.Name}, targets not summing to 1)";
                double[]? weight = loss.Weights ? TestData.Vector<double>(seed, cols, loss.Name.Contains("negative") ? -1 : 0.2, 2) : null;
                // Targets in [0, 1.5), not normalised, one exact zero per row: the gradient must be o·Σŷ − ŷ, not o − ŷ.
                Matrix<double> target = TestData.Uniform<double>(seed + 1, rows, cols, cols, 0, 1.5);
                for (int r = 0; r < rows; r++)
                {
                    target[r, r % cols] = 0;
                }
                var options = new CrossEntropyOptions { Reduction = loss.Reduction, LabelSmoothing = loss.Smoothing, GradScale = loss.GradScale };
                double[] z = TestData.Uniform<double>(seed + 2, rows, cols, cols, -4, 4).Span.ToArray();

                double Loss(double[] logits)
                {
                    double[] l = [double.NaN];
                    Ops.SoftCrossEntropy(width, Flat(logits, rows, cols), target, weight, options with { GradScale = 1 }, l, null);
                    return loss.GradScale * l[0];
                }
                var grad = new Matrix<double>(rows, cols, cols);
                Ops.SoftCrossEntropy(width, Flat(z, rows, cols), target, weight, options, [0.0], grad);
                Agree(NumericalGradient(z, Loss), grad.Span.ToArray(), context);
                count++;
            }
        }
        Assert.Equal(LossCases.Length * Lengths.Length, count);
    }

    /// <summary>softmax_backward and log_softmax_backward are the VJPs of the forward passes: for a
    /// fixed upstream g, d⟨g, f(z)⟩/dz by finite differences.</summary>
    [Theory, MemberData(nameof(AllWidths))]
    public void BackwardPassesAreTheVectorJacobianProducts(Width width)
    {
        int count = 0;
        foreach (int cols in Lengths)
        {
            foreach (bool isLog in new[] { false, true })
            {
                int seed = 920_000 + cols + (isLog ? 50 : 0);
                string op = isLog ? "log_softmax_backward" : "softmax_backward";
                string context = $"{op} vs finite differences, width={width} dtype=float64 cols={cols} seed={seed}";
                double[] z = TestData.Vector<double>(seed, cols, -4, 4);
                double[] g = TestData.Vector<double>(seed + 1, cols, -1, 1);

                Matrix<double> Forward(double[] logits)
                {
                    var y = new Matrix<double>(1, cols, cols);
                    if (isLog)
                    {
                        Ops.LogSoftmax(width, Flat(logits, 1, cols), y);
                    }
                    else
                    {
                        Ops.Softmax(width, Flat(logits, 1, cols), y);
                    }
                    return y;
                }
                double Projection(double[] logits) => Reference.Sum(Forward(logits).Row(0).Zip(g, (a, b) => a * b));

                var gradLogits = new Matrix<double>(1, cols, cols);
                if (isLog)
                {
                    Ops.LogSoftmaxBackward(width, Flat(g, 1, cols), Forward(z), gradLogits);
                }
                else
                {
                    Ops.SoftmaxBackward(width, Flat(g, 1, cols), Forward(z), gradLogits);
                }
                Agree(NumericalGradient(z, Projection), gradLogits.Row(0), context);

                // And the Jacobian: g·J is the same product.
                var jacobian = new Matrix<double>(cols, cols, cols);
                Ops.Jacobian(width, z, jacobian);
                if (!isLog)
                {
                    double[] viaJacobian = Enumerable.Range(0, cols).Select(j => Reference.Sum(Enumerable.Range(0, cols).Select(i => g[i] * jacobian[i, j]))).ToArray();
                    Agree(viaJacobian, gradLogits.Row(0), context + " (g·J)");
                }
                count++;
            }
        }
        Assert.Equal(2 * Lengths.Length, count);
    }

    private static Matrix<double> Flat(double[] values, int rows, int cols) => new Matrix<double>(rows, cols, cols).Fill((r, c) => values[r * cols + c]);
}
