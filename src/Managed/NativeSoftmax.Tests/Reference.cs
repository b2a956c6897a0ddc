namespace NativeSoftmax.Tests;

/// <summary>
/// An independent float64 reference: plain loops over one row, Math.Exp / Math.Log, and
/// Neumaier-compensated sums. Written from the formulas in docs/derivation.md and nativesoftmax.h,
/// sharing no code with the library.
/// </summary>
internal static class Reference
{
    /// <summary>Σ x with Neumaier's compensation (error independent of the length).</summary>
    public static double Sum(IEnumerable<double> values)
    {
        double sum = 0, compensation = 0;
        foreach (double x in values)
        {
            double t = sum + x;
            compensation += Math.Abs(sum) >= Math.Abs(x) ? (sum - t) + x : (x - t) + sum;
            sum = t;
        }
        return sum + compensation;
    }

    /// <summary>The header's non-finite rule: a row that is all −∞, contains +∞ or contains NaN is NaN.</summary>
    public static bool IsNaNRow(double[] z) =>
        z.Any(double.IsNaN) || z.Any(double.IsPositiveInfinity) || z.All(double.IsNegativeInfinity);

    /// <summary>
    /// lse − z_j for every j, as (m − z_j) + log Σ exp(z − m): adding m first would absorb the
    /// log-sum when |m| is huge (1e308 + 1.1 = 1e308).
    /// </summary>
    public static double[] LseMinus(double[] z)
    {
        if (IsNaNRow(z))
        {
            return z.Select(_ => double.NaN).ToArray();
        }
        double m = z.Max();
        double logSum = Math.Log(Sum(z.Select(x => Math.Exp(x - m))));
        return z.Select(x => (m - x) + logSum).ToArray();
    }

    public static double[] Softmax(double[] z)
    {
        if (IsNaNRow(z))
        {
            return z.Select(_ => double.NaN).ToArray();
        }
        double m = z.Max();
        double[] e = z.Select(x => ExpOfDifference(x, m)).ToArray();
        double s = Sum(e);
        return e.Select(x => x / s).ToArray();
    }

    /// <summary>
    /// e^(x − m) without the rounding of x − m (which alone would cost |x − m|·2⁻⁵³ relative,
    /// 1.5e-14 at x − m = −137): d = x − m rounded, its error by Knuth's TwoSum, e^d·(1 + error).
    /// </summary>
    public static double ExpOfDifference(double x, double m)
    {
        double d = x - m;
        if (!double.IsFinite(d))
        {
            return Math.Exp(d);
        }
        double xRounded = d + m, mRounded = xRounded - d;
        double error = (x - xRounded) + (mRounded - m);
        return Math.Exp(d) * (1 + error);
    }

    public static double[] LogSoftmax(double[] z)
    {
        if (IsNaNRow(z))
        {
            return z.Select(_ => double.NaN).ToArray();
        }
        double m = z.Max();
        double logSum = Math.Log(Sum(z.Select(x => Math.Exp(x - m))));
        return z.Select(x => (x - m) - logSum).ToArray();
    }

    /// <summary>o ⊙ (g − ⟨g, o⟩).</summary>
    public static double[] SoftmaxBackward(double[] g, double[] o)
    {
        double dot = Sum(g.Zip(o, (a, b) => a * b));
        return g.Zip(o, (gi, oi) => oi * (gi - dot)).ToArray();
    }

    /// <summary>g − exp(y)·Σ g, y the forward log-probabilities.</summary>
    public static double[] LogSoftmaxBackward(double[] g, double[] y)
    {
        double gSum = Sum(g);
        return g.Zip(y, (gi, yi) => gi - Math.Exp(yi) * gSum).ToArray();
    }

    /// <summary>J[i, j] = o_i·(δ_ij − o_j).</summary>
    public static double[,] Jacobian(double[] z)
    {
        double[] o = Softmax(z);
        var j = new double[z.Length, z.Length];
        for (int r = 0; r < z.Length; r++)
        {
            for (int c = 0; c < z.Length; c++)
            {
                j[r, c] = o[r] * ((r == c ? 1.0 : 0.0) - o[c]);
            }
        }
        return j;
    }

    /// <summary>
    /// A cross-entropy result: per-row losses, the reduced loss, the gradient rows, and for
    /// tolerances the gradient's scale s, each row's Σ|y_j| and Σ|y_j·(lse − z_j)| (the size of
    /// the terms that make up the row loss), and the mean's divisor.
    /// </summary>
    public sealed record LossResult(double[] RowLosses, double Reduced, double[][] Grad, double Scale,
        double[] TargetAbsMass, double[] RowLossScale, double Divisor);

    /// <summary>
    /// Hard labels, PyTorch semantics: loss_r = (1 − ε)·w_t·(lse − z_t) + (ε/C)·Σ_j w_j·(lse − z_j);
    /// gradient s·(o·Σy − y) with y_j = (1 − ε)·w_t·δ_jt + (ε/C)·w_j; ignored rows 0; mean divides
    /// by Σ w_t over the non-ignored rows.
    /// </summary>
    public static LossResult HardCrossEntropy(double[][] z, long[] target, double[]? weight, CrossEntropyOptions options)
    {
        int rows = z.Length;
        double eps = options.LabelSmoothing;
        var rowLoss = new double[rows];
        var targets = new double[rows][];
        var mass = new double[rows];
        var divisorTerms = new List<double>();
        for (int r = 0; r < rows; r++)
        {
            int cols = z[r].Length;
            double W(int j) => weight?[j] ?? 1.0;
            var y = new double[cols];
            targets[r] = y;
            if (target[r] == options.IgnoreIndex)
            {
                continue;
            }
            int t = checked((int)target[r]);
            divisorTerms.Add(W(t));
            double[] gap = LseMinus(z[r]);
            double loss = (1 - eps) * W(t) * gap[t];
            if (eps > 0)
            {
                loss += eps / cols * Sum(Enumerable.Range(0, cols).Select(j => W(j) * gap[j]));
            }
            rowLoss[r] = loss;
            for (int j = 0; j < cols; j++)
            {
                y[j] = eps / cols * W(j) + (j == t ? (1 - eps) * W(t) : 0.0);
            }
            mass[r] = Sum(y);
        }
        double divisor = Sum(divisorTerms);
        return Reduce(z, rowLoss, targets, mass, options, divisor, ignored: r => target[r] == options.IgnoreIndex);
    }

    /// <summary>
    /// Soft targets: ŷ = ((1 − ε)·p + ε/C)·w, loss_r = Σ ŷ_j·(lse − z_j) over ŷ_j ≠ 0,
    /// gradient s·(o·Σŷ − ŷ); mean divides by rows.
    /// </summary>
    public static LossResult SoftCrossEntropy(double[][] z, double[][] p, double[]? weight, CrossEntropyOptions options)
    {
        int rows = z.Length;
        double eps = options.LabelSmoothing;
        var rowLoss = new double[rows];
        var targets = new double[rows][];
        var mass = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            int cols = z[r].Length;
            double[] y = Enumerable.Range(0, cols)
                .Select(j => ((1 - eps) * p[r][j] + eps / cols) * (weight?[j] ?? 1.0)).ToArray();
            targets[r] = y;
            double[] gap = LseMinus(z[r]);
            rowLoss[r] = Sum(Enumerable.Range(0, cols).Where(j => y[j] != 0).Select(j => y[j] * gap[j]));
            mass[r] = Sum(y);
        }
        return Reduce(z, rowLoss, targets, mass, options, rows, ignored: _ => false);
    }

    private static LossResult Reduce(double[][] z, double[] rowLoss, double[][] y, double[] mass,
        CrossEntropyOptions options, double divisor, Func<int, bool> ignored)
    {
        double total = Sum(rowLoss);
        double reduced = options.Reduction switch
        {
            Reduction.Sum => total,
            Reduction.Mean => total / divisor,
            _ => double.NaN,
        };
        double s = options.Reduction == Reduction.Mean ? options.GradScale / divisor : options.GradScale;
        double[] absMass = y.Select(row => row.Sum(Math.Abs)).ToArray();
        double[] lossScale = z.Select((row, r) =>
        {
            double[] gap = LseMinus(row);
            return Sum(row.Select((_, j) => y[r][j] == 0 ? 0 : Math.Abs(y[r][j] * gap[j])));
        }).ToArray();
        var grad = new double[z.Length][];
        for (int r = 0; r < z.Length; r++)
        {
            if (ignored(r))
            {
                grad[r] = new double[z[r].Length];
                continue;
            }
            double[] o = Softmax(z[r]);
            grad[r] = o.Zip(y[r], (oi, yi) => s * (oi * mass[r] - yi)).ToArray();
        }
        return new LossResult(rowLoss, reduced, grad, s, absMass, lossScale, divisor);
    }
}
