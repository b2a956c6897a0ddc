using System.Numerics;
using Xunit.Abstractions;

namespace NativeSoftmax.Tests;

/// <summary>
/// Hard-label and soft-target cross-entropy (losses under every reduction, and gradients) against
/// the float64 reference, at every width and through the public API, for every length in
/// <see cref="Cases.Lengths"/>, with weights, smoothing, ignored rows, strides and in place.
/// </summary>
public class CrossEntropyTests(ITestOutputHelper output)
{
    private const int Rows = 4;

    /// <summary>One configuration of the loss; Weights = (low, high) of random class weights or null.</summary>
    private sealed record Setup(string Name, CrossEntropyOptions Options, (double Low, double High)? Weights,
        double Range, int PadLogits, int PadGrad, bool WantLoss, GradInto Grad);

    private enum GradInto { None, Separate, Logits, Target }

    private static readonly Setup[] HardSetups =
    [
        new("mean, ignored rows, contiguous", new() { Reduction = Reduction.Mean }, null, 100, 0, 0, true, GradInto.Separate),
        new("sum, weights, smoothing 0.1, grad scale 0.7, strided, logits +-1e4",
            new() { Reduction = Reduction.Sum, LabelSmoothing = 0.1, GradScale = 0.7 }, (0.2, 2.0), 1e4, 3, 1, true, GradInto.Separate),
        new("none, negative weights, smoothing 0.25, ignore_index -1, grad in place of logits",
            new() { Reduction = Reduction.None, LabelSmoothing = 0.25, IgnoreIndex = -1 }, (-0.5, 2.0), 30, 2, 2, true, GradInto.Logits),
        new("mean, weights, smoothing 0.3, grad scale 2, gradient only",
            new() { Reduction = Reduction.Mean, LabelSmoothing = 0.3, GradScale = 2 }, (0.1, 3.0), 100, 1, 0, false, GradInto.Separate),
        new("mean, weights, loss only", new() { Reduction = Reduction.Mean }, (0.5, 1.5), 100, 0, 0, true, GradInto.None),
    ];

    private static readonly Setup[] SoftSetups =
    [
        new("mean, distributions, contiguous", new() { Reduction = Reduction.Mean }, null, 100, 0, 0, true, GradInto.Separate),
        new("sum, weights, smoothing 0.1, grad scale 0.7, unnormalised targets with zeros, strided, logits +-1e4",
            new() { Reduction = Reduction.Sum, LabelSmoothing = 0.1, GradScale = 0.7 }, (0.2, 2.0), 1e4, 3, 1, true, GradInto.Separate),
        new("none, weights, -inf logits on zero targets, grad in place of target",
            new() { Reduction = Reduction.None }, (0.2, 2.0), 30, 2, 2, true, GradInto.Target),
        new("mean, smoothing 0.3, grad scale 2, mixed-sign targets, grad in place of logits",
            new() { Reduction = Reduction.Mean, LabelSmoothing = 0.3, GradScale = 2 }, null, 100, 1, 1, true, GradInto.Logits),
    ];

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void HardLabelsMatchReference(Width width, string dtype)
    {
        int count = dtype == "float32" ? Sweep<float>(width, soft: false) : Sweep<double>(width, soft: false);
        Assert.True(count == HardSetups.Length * Cases.Lengths.Length, $"cross_entropy {width} {dtype}: {count} cases checked");
    }

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void SoftTargetsMatchReference(Width width, string dtype)
    {
        int count = dtype == "float32" ? Sweep<float>(width, soft: true) : Sweep<double>(width, soft: true);
        Assert.True(count == SoftSetups.Length * Cases.Lengths.Length, $"cross_entropy_soft {width} {dtype}: {count} cases checked");
    }

    /// <summary>Rows that go by chunks of columns (<see cref="NativeSoftmax.Kernels.ChunkedRowLoop{TVec, T}"/>):
    /// one below the shortest, the shortest, and three chunks and a remainder.</summary>
    private static readonly int[] LongLengths = [2 * Chunk - 1, 2 * Chunk, 3 * Chunk + 5];

    private const int Chunk = (int)NativeSoftmax.Kernels.LongRow<NativeSoftmax.Simd.Vec256<float>, float>.ChunkLength;

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void LongRowsMatchReference(Width width, string dtype)
    {
        int count = 0;
        foreach (bool soft in new[] { false, true })
        {
            Setup[] setups = soft ? SoftSetups : HardSetups;
            for (int s = 0; s < setups.Length; s++)
            {
                foreach (int cols in LongLengths)
                {
                    int seed = (soft ? 700_000 : 800_000) + 10_000 * s + cols;
                    if (dtype == "float32")
                    {
                        Check<float>(width, soft, setups[s], cols, seed);
                    }
                    else
                    {
                        Check<double>(width, soft, setups[s], cols, seed);
                    }
                    count++;
                }
            }
        }
        Assert.True(count == (HardSetups.Length + SoftSetups.Length) * LongLengths.Length, $"cross_entropy long rows {width} {dtype}: {count} cases checked");
    }

    private (double Loss, double Grad) _worst;

    private int Sweep<T>(Width width, bool soft)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        Setup[] setups = soft ? SoftSetups : HardSetups;
        int count = 0;
        for (int s = 0; s < setups.Length; s++)
        {
            foreach (int cols in Cases.Lengths)
            {
                Check<T>(width, soft, setups[s], cols, seed: (soft ? 600_000 : 500_000) + 10_000 * s + cols);
                count++;
            }
        }
        output.WriteLine($"{(soft ? "cross_entropy_soft" : "cross_entropy")} {width} {TestData.Name<T>()}: {count} cases, "
            + $"worst loss error {_worst.Loss:P1}, worst gradient error {_worst.Grad:P1} of the tolerance");
        return count;
    }

    private void Check<T>(Width width, bool soft, Setup setup, int cols, int seed)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        string op = soft ? "cross_entropy_soft" : "cross_entropy";
        string context = $"{op} width={width} dtype={TestData.Name<T>()} cols={cols} rows={Rows} seed={seed} ({setup.Name})";
        var random = new Random(seed);
        CrossEntropyOptions options = setup.Options;
        int ld = cols + setup.PadLogits;
        Matrix<T> logits = TestData.Uniform<T>(seed, Rows, cols, ld, -setup.Range, setup.Range);
        T[]? weight = setup.Weights is var (low, high) ? TestData.Vector<T>(seed + 1, cols, low, high) : null;

        long[] labels = TestData.Labels(seed + 2, Rows, cols, options.IgnoreIndex);
        Matrix<T> target = new Matrix<T>(Rows, cols, setup.Grad == GradInto.Target ? ld : cols + 1);
        if (soft)
        {
            bool mixedSigns = options.LabelSmoothing == 0.3, unnormalised = options.Reduction == Reduction.Sum;
            bool distributions = !mixedSigns && !unnormalised && setup.Grad != GradInto.Target;
            double[][] p = Enumerable.Range(0, Rows).Select(_ => Enumerable.Range(0, cols).Select(_ =>
                mixedSigns ? random.NextDouble() * 1.5 - 0.5
                : random.Next(4) == 0 ? 0.0 : random.NextDouble()).ToArray()).ToArray();
            if (distributions)
            {
                p = p.Select(row => row.Sum() == 0 ? row : row.Select(x => x / row.Sum()).ToArray()).ToArray();
            }
            target.Fill((r, c) => p[r][c]);
            if (setup.Grad == GradInto.Target)
            {
                // −∞ logits exactly where the target is 0: their terms must add 0, not NaN.
                for (int r = 0; r < Rows; r++)
                {
                    for (int c = 0; c < cols - 1; c++)
                    {
                        if (target[r, c] == T.Zero)
                        {
                            logits[r, c] = T.NegativeInfinity;
                        }
                    }
                }
            }
        }

        double[][] z = logits.RowsAsDouble();
        Reference.LossResult expected = soft
            ? Reference.SoftCrossEntropy(z, target.RowsAsDouble(), weight?.AsDouble(), options)
            : Reference.HardCrossEntropy(z, labels, weight?.AsDouble(), options);

        int lossCount = options.Reduction == Reduction.None ? Rows : 1;
        T[]? loss = setup.WantLoss ? Enumerable.Repeat(Matrix<T>.Sentinel, lossCount).ToArray() : null;
        Matrix<T>? grad = setup.Grad switch
        {
            GradInto.Separate => new Matrix<T>(Rows, cols, cols + setup.PadGrad),
            GradInto.Logits => logits,
            GradInto.Target => target,
            _ => null,
        };
        if (soft)
        {
            Ops.SoftCrossEntropy(width, logits, target, weight, options, loss, grad);
        }
        else
        {
            Ops.CrossEntropy(width, logits, labels, weight, options, loss, grad);
        }

        bool isFloat = Expect.IsFloat<T>();
        if (loss is not null)
        {
            double relative = isFloat ? 2e-6 : 3e-15;
            if (options.Reduction == Reduction.None)
            {
                for (int r = 0; r < Rows; r++)
                {
                    // The header: 2e-6·Σ_j |y_j|·(1 + |lse − z_j|), the size of the terms summed.
                    double tolerance = relative * (expected.TargetAbsMass[r] + expected.RowLossScale[r]);
                    Expect.Close(expected.RowLosses[r], double.CreateTruncating(loss[r]), tolerance, context + " loss", r);
                    Track(ref _worst.Loss, expected.RowLosses[r], double.CreateTruncating(loss[r]), tolerance);
                }
            }
            else
            {
                double divisor = options.Reduction == Reduction.Mean ? Math.Abs(expected.Divisor) : 1;
                double tolerance = relative * (expected.TargetAbsMass.Sum() + expected.RowLossScale.Sum()) / divisor;
                Expect.Close(expected.Reduced, double.CreateTruncating(loss[0]), tolerance, context + $" {options.Reduction} loss");
                Track(ref _worst.Loss, expected.Reduced, double.CreateTruncating(loss[0]), tolerance);
            }
        }
        if (grad is not null)
        {
            double relative = isFloat ? 1e-6 : 3e-15;
            double worst = Expect.Rows(grad, expected.Grad,
                (r, _, _) => relative * Math.Abs(expected.Scale) * expected.TargetAbsMass[r], context + " grad");   // the header: 1e-6·|s|·Σ|y_j|
            _worst.Grad = Math.Max(_worst.Grad, worst);
        }
    }

    private static void Track(ref double worst, double expected, double actual, double tolerance)
    {
        if (double.IsFinite(expected) && tolerance > 0)
        {
            worst = Math.Max(worst, Math.Abs(actual - expected) / tolerance);
        }
    }
}
