namespace NativeSoftmax.Tests;

/// <summary>
/// An independent float64 reference: plain loops over one row, Math.Exp / Math.Log, and
/// Neumaier-compensated sums. Written from the formulas in docs/derivation.md and nativesoftmax.h,
/// sharing no code with the library.
/// </summary>
internal static class Reference
{
    /// <summary>Σ x with Neumaier's compensation (error independent of the length). Once the sum is
    /// infinite (or NaN) it is the plain IEEE sum: the compensation of an infinite term would be
    /// ∞ − ∞ = NaN, where a positive target on a −∞ logit adds +∞ to a loss.</summary>
    public static double Sum(IEnumerable<double> values)
    {
        double sum = 0, compensation = 0;
        foreach (double x in values)
        {
            AddCompensated(ref sum, ref compensation, x);
        }
        return double.IsFinite(sum) ? sum + compensation : sum;
    }

    /// <summary>One step of Neumaier's compensated sum: x into sum, its rounding error into compensation.</summary>
    private static void AddCompensated(ref double sum, ref double compensation, double x)
    {
        double t = sum + x;
        compensation += Math.Abs(sum) >= Math.Abs(x) ? (sum - t) + x : (x - t) + sum;
        sum = t;
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
        double logSum = LogSumOfShifted(z, m);
        return z.Select(x => (m - x) + logSum).ToArray();
    }

    /// <summary>
    /// log Σ exp(z − m) for m = max z, as log(1 + x) with x the sum over every element but one
    /// maximum: log of the whole sum would lose x when it is below 2⁻⁵³ (a dominant class).
    /// </summary>
    public static double LogSumOfShifted(double[] z, double m)
    {
        int first = Array.IndexOf(z, m);
        return LogOnePlus(Sum(z.Where((_, j) => j != first).Select(x => ExpOfDifference(x, m))));
    }

    /// <summary>log(1 + x) for x ≥ 0: its Taylor series below 0.01 (terms to x⁹, error below
    /// x¹⁰/10 &lt; 1e-20·x), Math.Log(1 + x) above (the rounding of 1 + x is then below 1.2e-14 of the result).</summary>
    public static double LogOnePlus(double x)
    {
        if (!(x < 0.01))
        {
            return Math.Log(1 + x);
        }
        double result = 0, power = 1;
        for (int k = 1; k <= 9; k++)
        {
            power *= x;
            result += (k % 2 == 1 ? power : -power) / k;
        }
        return result;
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
        double logSum = LogSumOfShifted(z, m);
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

    /// <summary>J[i, j] = o_i·(δ_ij − o_j), the diagonal as o_i·Σ_{k≠i} o_k (1 − o_i would round
    /// to 0 for a dominant class).</summary>
    public static double[,] Jacobian(double[] z)
    {
        double[] o = Softmax(z);
        var j = new double[z.Length, z.Length];
        for (int r = 0; r < z.Length; r++)
        {
            for (int c = 0; c < z.Length; c++)
            {
                j[r, c] = r == c ? o[r] * Sum(o.Where((_, k) => k != r)) : -o[r] * o[c];
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
        }
        double divisor = Sum(divisorTerms);
        return Reduce(z, rowLoss, targets, options, divisor, ignored: r => target[r] == options.IgnoreIndex);
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
        for (int r = 0; r < rows; r++)
        {
            int cols = z[r].Length;
            double[] y = Enumerable.Range(0, cols)
                .Select(j => ((1 - eps) * p[r][j] + eps / cols) * (weight?[j] ?? 1.0)).ToArray();
            targets[r] = y;
            double[] gap = LseMinus(z[r]);
            rowLoss[r] = Sum(Enumerable.Range(0, cols).Where(j => y[j] != 0).Select(j => y[j] * gap[j]));
        }
        // The header: a row whose targets are all 0 asks for nothing (loss 0, gradient 0), whatever its logits.
        return Reduce(z, rowLoss, targets, options, rows, ignored: r => targets[r].All(y => y == 0));
    }

    /// <summary>
    /// s·(o_i·Σy − y_i) = s·(e_i·Σ_{j≠i} y_j − y_i·Σ_{j≠i} e_j)/Σe with e = exp(z − max): the
    /// terms with j = i cancel exactly, so at a dominant class (o_i ≈ 1) nothing is lost to 1/S − 1.
    /// </summary>
    public static double[] Gradient(double[] z, double[] y, double s)
    {
        if (IsNaNRow(z))
        {
            return z.Select(_ => double.NaN).ToArray();
        }
        double m = z.Max();
        double[] e = z.Select(x => ExpOfDifference(x, m)).ToArray();
        double eSum = Sum(e), ySum = Sum(y);
        double[] yRests = SumsWithoutEach(y), eRests = SumsWithoutEach(e);
        return e.Select((ei, i) =>
        {
            bool large = ei > 0.25; // where o_i·Σy and y_i can cancel: sum without element i
            double yRest = large ? yRests[i] : ySum - y[i];
            double eRest = large ? eRests[i] : eSum - ei;
            return s * (ei * yRest - y[i] * eRest) / eSum;
        }).ToArray();
    }

    /// <summary>Σ_(j≠i) x_j for every i, never as Σx − x_i: the compensated sums (as <see cref="Sum"/>)
    /// of the elements before i and of those after it, added once. O(n) for the whole row.</summary>
    private static double[] SumsWithoutEach(double[] x)
    {
        int n = x.Length;
        var before = new double[n];
        var rests = new double[n];
        double sum = 0, compensation = 0;
        for (int i = 0; i < n; i++)
        {
            before[i] = sum + compensation;
            AddCompensated(ref sum, ref compensation, x[i]);
        }
        sum = compensation = 0;
        for (int i = n - 1; i >= 0; i--)
        {
            rests[i] = before[i] + (sum + compensation);
            AddCompensated(ref sum, ref compensation, x[i]);
        }
        return rests;
    }

    private static LossResult Reduce(double[][] z, double[] rowLoss, double[][] y,
        CrossEntropyOptions options, double divisor, Func<int, bool> ignored)
    {
        double total = Sum(rowLoss);
        // The header: the mean is NaN when its divisor is 0, and so is the gradient of every row it covers.
        double reduced = options.Reduction switch
        {
            Reduction.Sum => total,
            Reduction.Mean => divisor == 0 ? double.NaN : total / divisor,
            _ => double.NaN,
        };
        double s = options.Reduction != Reduction.Mean ? options.GradScale : divisor == 0 ? double.NaN : options.GradScale / divisor;
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
            grad[r] = Gradient(z[r], y[r], s);
        }
        return new LossResult(rowLoss, reduced, grad, s, absMass, lossScale, divisor);
    }
}
