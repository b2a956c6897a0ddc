using System.Numerics;
using Xunit.Abstractions;

namespace NativeSoftmax.Tests;

/// <summary>
/// Short rows computed across lanes (Kernels/LaneTile.cs): softmax, log_softmax, their backward passes and
/// hard-label cross-entropy on every row length 1 … 4W + 1 at every width (W lanes: the per-row short
/// path below 2W, across lanes up to 4W, the general loop above), with row counts around multiples of W (so blocks of W rows and
/// the rows left over both run), contiguous, strided and in place, against the float64 reference;
/// rows that are NaN, +∞, all −∞, partly −∞ or dominated by one class in every lane position; and the
/// same bits at 1, 2 and 7 threads. Soft-target cross-entropy likewise, with rows whose targets are all 0.
/// </summary>
[Collection(nameof(ThreadCountCollection))]
public class RowsAcrossLanesTests(ITestOutputHelper output)
{
    private static readonly Width[] Widths = [Width.Scalar, Width.V128, Width.V256, Width.V512];

    /// <summary>Lanes of <paramref name="width"/> for T.</summary>
    private static int Lanes<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
        width switch
        {
            Width.Scalar => 1,
            Width.V128 => 16 / System.Runtime.CompilerServices.Unsafe.SizeOf<T>(),
            Width.V256 => 32 / System.Runtime.CompilerServices.Unsafe.SizeOf<T>(),
            _ => 64 / System.Runtime.CompilerServices.Unsafe.SizeOf<T>(),
        };

    public static TheoryData<Width, string> WidthsAndTypes()
    {
        var data = new TheoryData<Width, string>();
        foreach (Width width in Widths)
        {
            foreach (string dtype in Cases.Dtypes)
            {
                data.Add(width, dtype);
            }
        }
        return data;
    }

    /// <summary>The widths of more than one lane (at one lane the only short row is n = 1).</summary>
    public static TheoryData<Width, string> VectorWidthsAndTypes()
    {
        var data = new TheoryData<Width, string>();
        foreach (Width width in Widths.Where(w => w != Width.Scalar))
        {
            foreach (string dtype in Cases.Dtypes)
            {
                data.Add(width, dtype);
            }
        }
        return data;
    }

    private enum Layout { Contiguous, Strided, InPlace }

    /// <summary>The header's forward bounds, as RowOperationTests states them.</summary>
    private static double Tolerance<T>(bool isLog, double expected) =>
        (isLog, Expect.IsFloat<T>()) switch
        {
            (false, true) => 1e-6 * Math.Abs(expected) + 1e-37,
            (false, false) => 2e-15 * Math.Abs(expected) + 1e-306,
            (true, true) => 2e-6 * (1 + Math.Abs(expected)),
            (true, false) => 1e-15 * (1 + Math.Abs(expected)),
        };

    /// <summary>Every short row length 1 … 4W + 1 (the per-row short path below 2W, across lanes up to
    /// 4W, the general loop above) with row counts around multiples of W, so that blocks of W rows
    /// and the rows left over both run.</summary>
    private static IEnumerable<(int Cols, int Rows)> ShortShapes(int w) =>
        from cols in Enumerable.Range(1, 4 * w + 1)
        from rows in new[] { w - 1, w, w + 1, 3 * w + 2, 64 + 2 * w + 1 }
        select (cols, rows);

    /// <summary>A cross-entropy test's logits (<see cref="Element"/>): the NaN, +∞ and −∞ rows kept only
    /// where <paramref name="special"/> (where the loss is per row), finite values instead elsewhere;
    /// dominant rows everywhere; the rows <paramref name="allNegativeInfinity"/> picks all −∞.</summary>
    private static Matrix<T> LossLogits<T>(int seed, int rows, int cols, bool special, Func<int, bool>? allNegativeInfinity = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        double dominant = Expect.IsFloat<T>() ? 20 : 40;
        return new Matrix<T>(rows, cols, cols + 2).Fill((r, col) =>
        {
            double x = Element(seed, r, col, cols, dominant);
            return allNegativeInfinity?.Invoke(r) == true ? double.NegativeInfinity
                : special || r % 11 == 9 || double.IsFinite(x) ? x : -0.5 * col;
        });
    }

    /// <summary>A value in [0, 1) from its coordinates, the same in every process (HashCode.Combine
    /// is seeded per process, so a failing input could not be run again): SplitMix64's finaliser of
    /// the four numbers packed into one.</summary>
    private static double Unit(int seed, int r, int c, int salt)
    {
        ulong x = ((ulong)(uint)seed << 40) ^ ((ulong)(uint)r << 20) ^ (ulong)(uint)c ^ ((ulong)(uint)salt << 58);
        x += 0x9E3779B97F4A7C15;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EB;
        x ^= x >> 31;
        return (x >> 11) * (1.0 / (1UL << 53));
    }

    /// <summary>Row r of a test matrix: special rows at positions that fall in different lanes
    /// (NaN, +∞, all −∞, −∞ beside finite values, a dominant class), the others uniform in [−30, 30].</summary>
    private static double Element(int seed, int r, int c, int cols, double dominant)
    {
        double uniform = Unit(seed, r, c, 0) * 60 - 30;
        return (r % 11) switch
        {
            1 => c == cols / 2 ? double.NaN : uniform,
            4 => c == cols - 1 ? double.PositiveInfinity : uniform,
            6 => double.NegativeInfinity,
            7 => c % 2 == 0 ? double.NegativeInfinity : uniform,
            9 => c == (r / 11) % cols ? dominant : -0.25 * (c % 3),
            _ => uniform,
        };
    }

    private static (int Checked, double Worst) Forward<T>(Width width, bool isLog)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int w = Lanes<T>(width), count = 0;
        double worst = 0, dominant = Expect.IsFloat<T>() ? 20 : 40;
        string op = isLog ? "log_softmax" : "softmax";
        foreach ((int cols, int rows) in ShortShapes(w))
        {
            foreach (Layout layout in Enum.GetValues<Layout>())
            {
                int seed = cols * 1000 + rows;
                int ldIn = layout == Layout.Contiguous ? cols : cols + 3;
                int ldOut = layout switch { Layout.Contiguous => cols, Layout.Strided => cols + 1, _ => ldIn };
                var logits = new Matrix<T>(rows, cols, ldIn).Fill((r, c) => Element(seed, r, c, cols, dominant));
                double[][] input = logits.RowsAsDouble();
                Matrix<T> result = layout == Layout.InPlace ? logits : new Matrix<T>(rows, cols, ldOut);
                if (isLog)
                {
                    Ops.LogSoftmax(width, logits, result);
                }
                else
                {
                    Ops.Softmax(width, logits, result);
                }
                Func<double[], double[]> reference = isLog ? Reference.LogSoftmax : Reference.Softmax;
                double[][] expected = input.Select(reference).ToArray();
                string context = $"{op} width={width} (W={w}) dtype={TestData.Name<T>()} {rows} x {cols} {layout}";
                worst = Math.Max(worst, Expect.Rows(result, expected, (_, _, e) => Tolerance<T>(isLog, e), context));
                count++;
            }
        }
        return (count, worst);
    }

    [Theory, MemberData(nameof(WidthsAndTypes))]
    public void SoftmaxOfShortRowsMatchesReference(Width width, string dtype)
    {
        var (done, worst) = dtype == "float32" ? Forward<float>(width, isLog: false) : Forward<double>(width, isLog: false);
        output.WriteLine($"softmax {width} {dtype}: {done} cases, worst {worst:P1} of the tolerance");
        Assert.True(done > 0);
    }

    [Theory, MemberData(nameof(WidthsAndTypes))]
    public void LogSoftmaxOfShortRowsMatchesReference(Width width, string dtype)
    {
        var (done, worst) = dtype == "float32" ? Forward<float>(width, isLog: true) : Forward<double>(width, isLog: true);
        output.WriteLine($"log_softmax {width} {dtype}: {done} cases, worst {worst:P1} of the tolerance");
        Assert.True(done > 0);
    }

    /// <summary>A dominant class in every lane of full blocks (the exponentials of the others sum below an
    /// ulp of 1): its log-probability, about −Σ_{j≠t} exp(z_j − max), within 4 ulp; a sum that let the 1 absorb
    /// the others would give 0.</summary>
    [Theory, MemberData(nameof(VectorWidthsAndTypes))]
    public void LogSoftmaxOfADominantClassKeepsItsTinyValueInEveryLane(Width width, string dtype)
    {
        int done = dtype == "float32" ? Dominant<float>(width) : Dominant<double>(width);
        Assert.True(done > 0);
    }

    private static int Dominant<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int w = Lanes<T>(width), count = 0;
        double dominant = Expect.IsFloat<T>() ? 20 : 40;
        for (int cols = Math.Max(2, w); cols <= 4 * w; cols++)
        {
            int rows = 2 * w;
            var logits = new Matrix<T>(rows, cols, cols).Fill((r, c) => c == r % cols ? dominant : -0.5 * ((r + c) % 4));
            var result = new Matrix<T>(rows, cols, cols);
            Ops.LogSoftmax(width, logits, result);
            double[][] expected = logits.RowsAsDouble().Select(Reference.LogSoftmax).ToArray();
            for (int r = 0; r < rows; r++, count++)
            {
                double exact = expected[r][r % cols], got = double.CreateTruncating(result[r, r % cols]);
                double ulp = Math.ScaleB(1.0, Math.ILogB(exact) - (Expect.IsFloat<T>() ? 23 : 52));
                Assert.True(Math.Abs(got - exact) <= 4 * ulp,
                    $"log_softmax width={width} dtype={TestData.Name<T>()} {rows} x {cols} row {r}: got {got:R}, exact {exact:R}");
            }
        }
        return count;
    }

    /// <summary>Many blocks of short rows: softmax, log_softmax and their backward passes give the same bits at
    /// 1, 2 and 7 threads at every width.</summary>
    [Theory, MemberData(nameof(WidthsAndTypes))]
    public void ShortRowsGiveTheSameBitsAtOneTwoAndSevenThreads(Width width, string dtype)
    {
        if (dtype == "float32")
        {
            SameBits<float>(width);
        }
        else
        {
            SameBits<double>(width);
        }
    }

    private static void SameBits<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int w = Lanes<T>(width);
        int before = SoftmaxPrimitives.ThreadCount;
        try
        {
            foreach (int cols in new[] { w, 2 * w - 1, 10, 3 * w + 1, 4 * w })
            {
                const int rows = 20_003;
                Matrix<T> logits = TestData.Uniform<T>(cols, rows, cols, cols, -30, 30);
                Matrix<T> gradOutput = TestData.Uniform<T>(cols + 1, rows, cols, cols, -1, 1);
                T[]? firstSoftmax = null, firstLog = null, firstBackward = null, firstLogBackward = null;
                foreach (int threads in new[] { 1, 2, 7 })
                {
                    SoftmaxPrimitives.ThreadCount = threads;
                    var softmax = new Matrix<T>(rows, cols, cols);
                    var logSoftmax = new Matrix<T>(rows, cols, cols);
                    Ops.Softmax(width, logits, softmax);
                    Ops.LogSoftmax(width, logits, logSoftmax);
                    var backward = new Matrix<T>(rows, cols, cols);
                    var logBackward = new Matrix<T>(rows, cols, cols);
                    Ops.SoftmaxBackward(width, gradOutput, softmax, backward);
                    Ops.LogSoftmaxBackward(width, gradOutput, logSoftmax, logBackward);
                    firstSoftmax ??= softmax.Data;
                    firstLog ??= logSoftmax.Data;
                    firstBackward ??= backward.Data;
                    firstLogBackward ??= logBackward.Data;
                    string context = $"width={width} dtype={TestData.Name<T>()} {rows} x {cols} at {threads} threads";
                    Assert.True(firstSoftmax.AsSpan().SequenceEqual(softmax.Data), "softmax " + context + " differs from 1 thread");
                    Assert.True(firstLog.AsSpan().SequenceEqual(logSoftmax.Data), "log_softmax " + context + " differs from 1 thread");
                    Assert.True(firstBackward.AsSpan().SequenceEqual(backward.Data), "softmax_backward " + context + " differs from 1 thread");
                    Assert.True(firstLogBackward.AsSpan().SequenceEqual(logBackward.Data), "log_softmax_backward " + context + " differs from 1 thread");
                }
            }
        }
        finally
        {
            SoftmaxPrimitives.ThreadCount = before;
        }
    }

    /// <summary>A hard-label cross-entropy case: weights or none, label smoothing, reduction, where the
    /// gradient goes, and whether some labels are ignore_index (their group of W rows then runs row by row).</summary>
    private sealed record LossCase(string Name, bool Weighted, double Smoothing, Reduction Reduction, bool GradIntoLogits, bool Ignored, bool Special);

    private static readonly LossCase[] LossCases =
    [
        new("plain, NaN/inf rows, grad strided", false, 0, Reduction.None, false, false, true),
        new("weighted, smoothing 0.1, grad in place, some ignored", true, 0.1, Reduction.None, true, true, false),
        new("weighted, mean, grad strided", true, 0, Reduction.Mean, false, false, false),
        new("smoothing 0.2, sum, grad in place", false, 0.2, Reduction.Sum, true, false, false),
    ];

    [Theory, MemberData(nameof(WidthsAndTypes))]
    public void CrossEntropyOfShortRowsMatchesReference(Width width, string dtype)
    {
        int done = dtype == "float32" ? CrossEntropy<float>(width) : CrossEntropy<double>(width);
        Assert.True(done > 0);
    }

    private static int CrossEntropy<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int w = Lanes<T>(width), count = 0;
        foreach ((int cols, int rows) in ShortShapes(w))
        {
            foreach (LossCase c in LossCases)
            {
                int seed = cols * 1000 + rows;
                var options = new CrossEntropyOptions { Reduction = c.Reduction, LabelSmoothing = c.Smoothing };
                Matrix<T> logits = LossLogits<T>(seed, rows, cols, c.Special);
                long[] labels = Enumerable.Range(0, rows).Select(r => c.Ignored && r % 13 == 5 ? -100L : (r * 7 + 3) % cols).ToArray();
                T[]? weight = c.Weighted ? TestData.Vector<T>(seed, cols, 0.5, 2) : null;
                Reference.LossResult expected = Reference.HardCrossEntropy(logits.RowsAsDouble(), labels, weight?.AsDouble(), options);
                var loss = Enumerable.Repeat(Matrix<T>.Sentinel, c.Reduction == Reduction.None ? rows : 1).ToArray();
                Matrix<T> grad = c.GradIntoLogits ? logits : new Matrix<T>(rows, cols, cols + 1);
                Ops.CrossEntropy(width, logits, labels, weight, options, loss, grad);
                string context = $"cross_entropy width={width} (W={w}) dtype={TestData.Name<T>()} {rows} x {cols} {c.Name}";
                CheckLoss(expected, loss, grad, c.Reduction, context);
                count++;
            }
        }
        return count;
    }

    /// <summary>A dominant class at the label in every lane: the loss and the gradient at the label, both
    /// about Σ_{j≠t} exp(z_j − max), within 4 ulp (a sum that let the 1 absorb the others gives 0).</summary>
    [Theory, MemberData(nameof(VectorWidthsAndTypes))]
    public void CrossEntropyOfADominantClassKeepsItsTinyValueInEveryLane(Width width, string dtype)
    {
        int done = dtype == "float32" ? DominantLoss<float>(width, soft: false) : DominantLoss<double>(width, soft: false);
        Assert.True(done > 0);
    }

    /// <summary>Hard labels (or, <paramref name="soft"/>, a one-hot soft target) on a dominant class in
    /// every lane: the loss and the gradient there within 4 ulp of float64.</summary>
    private static int DominantLoss<T>(Width width, bool soft)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int w = Lanes<T>(width), count = 0;
        double dominant = Expect.IsFloat<T>() ? 20 : 40;
        var options = new CrossEntropyOptions { Reduction = Reduction.None };
        string op = soft ? "cross_entropy_soft" : "cross_entropy";
        for (int cols = Math.Max(2, w); cols <= 4 * w; cols++)
        {
            int rows = 2 * w;
            var logits = new Matrix<T>(rows, cols, cols).Fill((r, c) => c == r % cols ? dominant : -0.5 * ((r + c) % 4));
            long[] labels = Enumerable.Range(0, rows).Select(r => (long)(r % cols)).ToArray();
            var target = new Matrix<T>(rows, cols, cols).Fill((r, c) => c == r % cols ? 1.0 : 0.0);
            foreach (T[]? weight in new[] { null, TestData.Vector<T>(cols, cols, 0.5, 2) })
            {
                Reference.LossResult expected = soft
                    ? Reference.SoftCrossEntropy(logits.RowsAsDouble(), target.RowsAsDouble(), weight?.AsDouble(), options)
                    : Reference.HardCrossEntropy(logits.RowsAsDouble(), labels, weight?.AsDouble(), options);
                var loss = new T[rows];
                var grad = new Matrix<T>(rows, cols, cols);
                if (soft)
                {
                    Ops.SoftCrossEntropy(width, logits, target, weight, options, loss, grad);
                }
                else
                {
                    Ops.CrossEntropy(width, logits, labels, weight, options, loss, grad);
                }
                for (int r = 0; r < rows; r++, count++)
                {
                    string context = $"{op} width={width} dtype={TestData.Name<T>()} {rows} x {cols} weights={weight is not null} row {r}";
                    WithinUlps<T>(expected.RowLosses[r], loss[r], context + ": loss");
                    WithinUlps<T>(expected.Grad[r][r % cols], grad[r, r % cols], context + ": gradient at the label");
                }
            }
        }
        return count;
    }

    /// <summary>A cross-entropy's loss (per row or reduced) and gradient against the float64 reference,
    /// with the header's bounds: 2e-6·Σ_j |y_j|·(1 + |lse − z_j|) for a float32 loss (3e-15 float64),
    /// 1e-6·|s|·Σ|y_j| for a float32 gradient (3e-15 float64).</summary>
    private static void CheckLoss<T>(Reference.LossResult expected, T[] loss, Matrix<T> grad, Reduction reduction, string context)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        bool isFloat = Expect.IsFloat<T>();
        double relative = isFloat ? 2e-6 : 3e-15;
        if (reduction == Reduction.None)
        {
            for (int r = 0; r < loss.Length; r++)
            {
                Expect.Close(expected.RowLosses[r], double.CreateTruncating(loss[r]),
                    relative * (expected.TargetAbsMass[r] + expected.RowLossScale[r]), context + " loss", r);
            }
        }
        else
        {
            double divisor = reduction == Reduction.Mean ? Math.Abs(expected.Divisor) : 1;
            Expect.Close(expected.Reduced, double.CreateTruncating(loss[0]),
                relative * (expected.TargetAbsMass.Sum() + expected.RowLossScale.Sum()) / divisor, context + " loss");
        }
        double gradRelative = isFloat ? 1e-6 : 3e-15;
        Expect.Rows(grad, expected.Grad, (r, _, _) => gradRelative * Math.Abs(expected.Scale) * expected.TargetAbsMass[r], context + " grad");
    }

    private static void WithinUlps<T>(double exact, T got, string context)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        double g = double.CreateTruncating(got);
        double ulp = Math.ScaleB(1.0, Math.ILogB(exact) - (Expect.IsFloat<T>() ? 23 : 52));
        Assert.True(Math.Abs(g - exact) <= 4 * ulp, $"{context}: got {g:R}, exact {exact:R}");
    }

    /// <summary>Cross-entropy over many blocks of short rows (mean, weights, smoothing): the same loss and
    /// gradient bits at 1, 2 and 7 threads at every width.</summary>
    [Theory, MemberData(nameof(WidthsAndTypes))]
    public void CrossEntropyOfShortRowsGivesTheSameBitsAtOneTwoAndSevenThreads(Width width, string dtype)
    {
        if (dtype == "float32")
        {
            SameLossBits<float>(width, soft: false);
        }
        else
        {
            SameLossBits<double>(width, soft: false);
        }
    }

    /// <summary>Hard labels with ignored rows (or, <paramref name="soft"/>, soft targets with all-zero
    /// rows), mean, weights, smoothing 0.1, over 20003 short rows: the same loss and gradient bits at
    /// 1, 2 and 7 threads.</summary>
    private static void SameLossBits<T>(Width width, bool soft)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int w = Lanes<T>(width);
        int before = SoftmaxPrimitives.ThreadCount;
        var options = new CrossEntropyOptions { Reduction = Reduction.Mean, LabelSmoothing = 0.1 };
        string op = soft ? "cross_entropy_soft" : "cross_entropy";
        try
        {
            foreach (int cols in new[] { w, 2 * w - 1, 10, 3 * w + 1, 4 * w })
            {
                const int rows = 20_003;
                Matrix<T> logits = TestData.Uniform<T>(cols, rows, cols, cols, -30, 30);
                long[] labels = TestData.Labels(cols, rows, cols, ignoreIndex: -100);
                var target = new Matrix<T>(rows, cols, cols).Fill((r, c) => SoftTarget(cols, r, c, mixedSigns: false, zeroRows: true));
                T[] weight = TestData.Vector<T>(cols, cols, 0.5, 2);
                T[]? firstLoss = null, firstGrad = null;
                foreach (int threads in new[] { 1, 2, 7 })
                {
                    SoftmaxPrimitives.ThreadCount = threads;
                    var loss = new T[1];
                    var grad = new Matrix<T>(rows, cols, cols);
                    if (soft)
                    {
                        Ops.SoftCrossEntropy(width, logits, target, weight, options, loss, grad);
                    }
                    else
                    {
                        Ops.CrossEntropy(width, logits, labels, weight, options, loss, grad);
                    }
                    firstLoss ??= loss;
                    firstGrad ??= grad.Data;
                    string context = $"{op} width={width} dtype={TestData.Name<T>()} {rows} x {cols} at {threads} threads";
                    Assert.True(firstLoss.AsSpan().SequenceEqual(loss), context + ": the loss differs from 1 thread");
                    Assert.True(firstGrad.AsSpan().SequenceEqual(grad.Data), context + ": the gradient differs from 1 thread");
                }
            }
        }
        finally
        {
            SoftmaxPrimitives.ThreadCount = before;
        }
    }

    /// <summary>A soft-target cross-entropy case: weights or none, label smoothing, reduction, where the
    /// gradient goes, the targets (distributions, or of mixed signs), whether some rows' targets are all
    /// 0 (their group of W rows then runs row by row) and whether the NaN/±∞ rows are kept.</summary>
    private sealed record SoftLossCase(string Name, bool Weighted, double Smoothing, Reduction Reduction, GradInto Grad,
        bool MixedSigns, bool ZeroRows, bool Special);

    private enum GradInto { Separate, Logits, Target }

    private static readonly SoftLossCase[] SoftLossCases =
    [
        new("plain, NaN/inf rows, grad strided", false, 0, Reduction.None, GradInto.Separate, false, false, true),
        new("weighted, smoothing 0.1, grad in place of logits", true, 0.1, Reduction.None, GradInto.Logits, false, false, false),
        new("weighted, mean, grad in place of target, all-zero rows of -inf logits", true, 0, Reduction.Mean, GradInto.Target, false, true, false),
        new("smoothing 0.2, sum, mixed-sign targets, grad strided", false, 0.2, Reduction.Sum, GradInto.Separate, true, false, false),
    ];

    /// <summary>Soft-target cross-entropy on every row length 1 … 4W + 1 at every width (across lanes
    /// from W to 4W), with row counts around multiples of W, against the float64 reference with the
    /// header's bounds (as CrossEntropyTests).</summary>
    [Theory, MemberData(nameof(WidthsAndTypes))]
    public void SoftCrossEntropyOfShortRowsMatchesReference(Width width, string dtype)
    {
        int done = dtype == "float32" ? SoftCrossEntropy<float>(width) : SoftCrossEntropy<double>(width);
        Assert.True(done > 0);
    }

    /// <summary>Target j of row r: a distribution with some zeros (normalised by the caller), or values
    /// in [−0.5, 1); rows r ≡ 2 (mod 7) all 0 when asked (their logits are then all −∞: loss 0 and
    /// gradient 0 all the same, which only the row-by-row path gives).</summary>
    private static double SoftTarget(int seed, int r, int c, bool mixedSigns, bool zeroRows)
    {
        double u = Unit(seed, r, c, 17);
        return zeroRows && r % 7 == 2 ? 0.0
            : mixedSigns ? 1.5 * u - 0.5
            : c % 3 == 1 ? 0.0 : u;
    }

    private static int SoftCrossEntropy<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int w = Lanes<T>(width), count = 0;
        foreach ((int cols, int rows) in ShortShapes(w))
        {
            foreach (SoftLossCase c in SoftLossCases)
            {
                int seed = cols * 1000 + rows;
                var options = new CrossEntropyOptions { Reduction = c.Reduction, LabelSmoothing = c.Smoothing };
                // Rows whose targets are all 0 ask for nothing: all −∞ logits must not matter.
                Matrix<T> logits = LossLogits<T>(seed, rows, cols, c.Special, r => c.ZeroRows && r % 7 == 2);
                double[][] p = Enumerable.Range(0, rows).Select(r => Enumerable.Range(0, cols)
                    .Select(col => SoftTarget(seed, r, col, c.MixedSigns, c.ZeroRows)).ToArray()).ToArray();
                if (!c.MixedSigns)
                {
                    p = p.Select(row => row.Sum() == 0 ? row : row.Select(x => x / row.Sum()).ToArray()).ToArray();
                }
                var target = new Matrix<T>(rows, cols, cols + 1).Fill((r, col) => p[r][col]);
                T[]? weight = c.Weighted ? TestData.Vector<T>(seed, cols, 0.5, 2) : null;
                Reference.LossResult expected = Reference.SoftCrossEntropy(logits.RowsAsDouble(), target.RowsAsDouble(), weight?.AsDouble(), options);
                var loss = Enumerable.Repeat(Matrix<T>.Sentinel, c.Reduction == Reduction.None ? rows : 1).ToArray();
                Matrix<T> grad = c.Grad switch
                {
                    GradInto.Logits => logits,
                    GradInto.Target => target,
                    _ => new Matrix<T>(rows, cols, cols + 3),
                };
                Ops.SoftCrossEntropy(width, logits, target, weight, options, loss, grad);
                string context = $"cross_entropy_soft width={width} (W={w}) dtype={TestData.Name<T>()} {rows} x {cols} {c.Name}";
                CheckLoss(expected, loss, grad, c.Reduction, context);
                count++;
            }
        }
        return count;
    }

    /// <summary>Soft targets all on a dominant class, in every lane: the loss and the gradient there,
    /// both about Σ_{j≠t} exp(z_j − max), within 4 ulp (the gradient's form at e = 1 keeps them; s·(1/S − 1)
    /// would round to 0).</summary>
    [Theory, MemberData(nameof(VectorWidthsAndTypes))]
    public void SoftCrossEntropyOfADominantClassKeepsItsTinyValueInEveryLane(Width width, string dtype)
    {
        int done = dtype == "float32" ? DominantLoss<float>(width, soft: true) : DominantLoss<double>(width, soft: true);
        Assert.True(done > 0);
    }

    /// <summary>Soft-target cross-entropy over many blocks of short rows (mean, weights, smoothing, some
    /// all-zero rows): the same loss and gradient bits at 1, 2 and 7 threads at every width.</summary>
    [Theory, MemberData(nameof(WidthsAndTypes))]
    public void SoftCrossEntropyOfShortRowsGivesTheSameBitsAtOneTwoAndSevenThreads(Width width, string dtype)
    {
        if (dtype == "float32")
        {
            SameLossBits<float>(width, soft: true);
        }
        else
        {
            SameLossBits<double>(width, soft: true);
        }
    }

    /// <summary>The widths, for tests of float64 only.</summary>
    public static TheoryData<Width> AllWidths() => new(Widths);

    /// <summary>Soft-target cross-entropy's reduced loss over whole groups of W rows in one block
    /// (float64, where every row's loss is stored exactly by the reduction "none"): across lanes each
    /// row's loss joins the total one by one in row order, so the sum is exactly the in-order sum of
    /// the losses "none" gives (lanes summing their group apart first differ in the last bits).</summary>
    [Theory, MemberData(nameof(AllWidths))]
    public void SoftCrossEntropySumAddsTheRowLossesInRowOrder(Width width)
    {
        int w = Lanes<double>(width);
        foreach (int cols in new[] { w, 2 * w + 1, 4 * w })
        {
            foreach (int seed in Enumerable.Range(1, 8))
            {
                int rows = 4 * w; // groups of W rows across lanes and no rows left over
                Matrix<double> logits = TestData.Uniform<double>(seed * 100 + cols, rows, cols, cols, -30, 30);
                double[][] p = Enumerable.Range(0, rows).Select(r => Enumerable.Range(0, cols)
                    .Select(c => SoftTarget(seed, r, c, mixedSigns: false, zeroRows: false) + 0.01).ToArray()).ToArray();
                var target = new Matrix<double>(rows, cols, cols).Fill((r, c) => p[r][c] / p[r].Sum());
                var rowLosses = new double[rows];
                var sum = new double[1];
                Ops.SoftCrossEntropy(width, logits, target, null, new CrossEntropyOptions { Reduction = Reduction.None }, rowLosses, null);
                Ops.SoftCrossEntropy(width, logits, target, null, new CrossEntropyOptions { Reduction = Reduction.Sum }, sum, null);
                double inOrder = 0;
                foreach (double loss in rowLosses)
                {
                    inOrder += loss;
                }
                Assert.True(BitConverter.DoubleToInt64Bits(inOrder) == BitConverter.DoubleToInt64Bits(sum[0]),
                    $"cross_entropy_soft width={width} (W={w}) {rows} x {cols} seed {seed}: sum {sum[0]:R}, in-order sum of the row losses {inOrder:R}");
            }
        }
    }

    /// <summary>softmax_backward and log_softmax_backward on every short row length, contiguous, strided and
    /// in place into either input, against the float64 reference with RowOperationTests' bounds.</summary>
    [Theory, MemberData(nameof(WidthsAndTypes))]
    public void BackwardOfShortRowsMatchesReference(Width width, string dtype)
    {
        int done = dtype == "float32" ? Backward<float>(width) : Backward<double>(width);
        Assert.True(done > 0);
    }

    private enum BackwardLayout { Contiguous, Strided, IntoGradOutput, IntoOutput }

    private static int Backward<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int w = Lanes<T>(width), count = 0;
        double relative = Expect.IsFloat<T>() ? 1e-6 : 2e-15;
        foreach ((int cols, int rows) in ShortShapes(w))
        {
            foreach (bool isLog in new[] { false, true })
            {
                foreach (BackwardLayout layout in Enum.GetValues<BackwardLayout>())
                {
                    int seed = cols * 1000 + rows + (isLog ? 500 : 0);
                    int ld = layout == BackwardLayout.Contiguous ? cols : cols + 2;
                    Matrix<T> gradOutput = TestData.Uniform<T>(seed, rows, cols, ld, -1, 1);
                    Matrix<T> forward = isLog
                        ? TestData.LogProbabilities<T>(seed + 1, rows, cols, ld)
                        : TestData.Probabilities<T>(seed + 1, rows, cols, ld);
                    double[][] g = gradOutput.RowsAsDouble(), o = forward.RowsAsDouble();
                    Func<double[], double[], double[]> reference = isLog ? Reference.LogSoftmaxBackward : Reference.SoftmaxBackward;
                    double[][] expected = g.Zip(o, reference).ToArray();
                    double[][] scale = g.Zip(o, (gr, or) => isLog
                        ? gr.Select((gi, i) => Math.Abs(gi) + Math.Exp(or[i]) * gr.Sum(Math.Abs)).ToArray()
                        : gr.Select((gi, i) => or[i] * (Math.Abs(gi) + gr.Zip(or, (a, b) => Math.Abs(a * b)).Sum())).ToArray()).ToArray();
                    Matrix<T> result = layout switch
                    {
                        BackwardLayout.IntoGradOutput => gradOutput,
                        BackwardLayout.IntoOutput => forward,
                        _ => new Matrix<T>(rows, cols, ld + 1),
                    };
                    if (isLog)
                    {
                        Ops.LogSoftmaxBackward(width, gradOutput, forward, result);
                    }
                    else
                    {
                        Ops.SoftmaxBackward(width, gradOutput, forward, result);
                    }
                    string context = $"{(isLog ? "log_softmax_backward" : "softmax_backward")} width={width} (W={w}) dtype={TestData.Name<T>()} {rows} x {cols} {layout}";
                    Expect.Rows(result, expected, (r, c, _) => relative * scale[r][c] + 1e-300, context);
                    count++;
                }
            }
        }
        return count;
    }
}
