using System.Numerics;
using NativeSoftmax.Native;

namespace NativeSoftmax.Tests;

/// <summary>
/// A per-row upstream gradient (nsm_cross_entropy_options.grad_output; the gradOutput overloads):
/// with reduction none, row r's gradient is grad_output[r]·grad_scale·∂loss_r/∂z_r, against the
/// float64 reference at every width and through the public API, hard labels and soft targets; the
/// losses are the same bits as without it; a non-finite value makes its row, and only its row,
/// non-finite, but an ignored row stays 0; the errors; and how the C exports read version 1 and
/// version 2 of the options struct.
/// </summary>
public unsafe class GradOutputTests
{
    private const int Rows = 6;

    /// <summary>One configuration: strided logits, class weights, smoothing, a grad scale, the
    /// gradient in place over the logits.</summary>
    private sealed record Setup(string Name, CrossEntropyOptions Options, bool Weights, int PadLogits, bool InPlace);

    private static readonly Setup[] Setups =
    [
        new("none, plain", new() { Reduction = Reduction.None }, false, 0, false),
        new("none, weights, smoothing 0.1, grad scale -0.5, strided, grad in place of logits",
            new() { Reduction = Reduction.None, LabelSmoothing = 0.1, GradScale = -0.5 }, true, 3, true),
    ];

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void HardLabelGradientsAreScaledPerRow(Width width, string dtype)
    {
        if (dtype == "float32")
        {
            Sweep<float>(width, soft: false);
        }
        else
        {
            Sweep<double>(width, soft: false);
        }
    }

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void SoftTargetGradientsAreScaledPerRow(Width width, string dtype)
    {
        if (dtype == "float32")
        {
            Sweep<float>(width, soft: true);
        }
        else
        {
            Sweep<double>(width, soft: true);
        }
    }

    /// <summary>A row that goes by chunks of columns (three chunks and a remainder), whose gradient
    /// without label smoothing is its chunks' exponentials scaled (<see cref="NativeSoftmax.Kernels.LongRow{TVec, T}.ScaleChunks"/>).</summary>
    private const int LongCols = 3 * (int)NativeSoftmax.Kernels.LongRow<NativeSoftmax.Simd.Vec256<float>, float>.ChunkLength + 5;

    private static void Sweep<T>(Width width, bool soft)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        for (int s = 0; s < Setups.Length; s++)
        {
            foreach (int cols in Cases.Lengths.Append(LongCols))
            {
                Check<T>(width, soft, Setups[s], cols, seed: (soft ? 900_000 : 800_000) + 10_000 * s + cols);
            }
        }
    }

    private static void Check<T>(Width width, bool soft, Setup setup, int cols, int seed)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        string context = $"{(soft ? "cross_entropy_soft" : "cross_entropy")} grad_output width={width} dtype={TestData.Name<T>()} "
            + $"cols={cols} rows={Rows} seed={seed} ({setup.Name})";
        CrossEntropyOptions options = setup.Options;
        int ld = cols + setup.PadLogits;
        Matrix<T> logits = TestData.Uniform<T>(seed, Rows, cols, ld, -20, 20);
        T[]? weight = setup.Weights ? TestData.Vector<T>(seed + 1, cols, -0.5, 2.0) : null;
        long[] labels = TestData.Labels(seed + 2, Rows, cols, options.IgnoreIndex);
        Matrix<T> target = TestData.Uniform<T>(seed + 3, Rows, cols, cols, 0, 1);
        T[] gradOutput = TestData.Vector<T>(seed + 4, Rows, -3, 3);
        gradOutput[1] = T.Zero;
        // A negative upstream gradient on a row that counts (hard labels: not ignored), for sure.
        gradOutput[Enumerable.Range(2, Rows - 2).First(r => soft || labels[r] != options.IgnoreIndex)] = T.CreateTruncating(-1.5);

        double[][] z = logits.RowsAsDouble();
        Reference.LossResult expected = soft
            ? Reference.SoftCrossEntropy(z, target.RowsAsDouble(), weight?.AsDouble(), options)
            : Reference.HardCrossEntropy(z, labels, weight?.AsDouble(), options);
        double[] upstream = gradOutput.AsDouble();
        // grad_r = grad_output[r]·(grad_scale·∂loss_r/∂z_r): the reference's gradient already carries grad_scale.
        double[][] expectedGrad = [.. expected.Grad.Select((row, r) => row.Select(g => upstream[r] * g).ToArray())];

        // The same call without grad_output first: its losses must be the same bits.
        T[] lossWithout = new T[Rows];
        Run(width, soft, logits.Clone(), labels, target, weight, options, lossWithout, new Matrix<T>(Rows, cols, cols), null);

        T[] loss = Enumerable.Repeat(Matrix<T>.Sentinel, Rows).ToArray();
        Matrix<T> grad = setup.InPlace ? logits : new Matrix<T>(Rows, cols, cols + 1);
        Run(width, soft, logits, labels, target, weight, options, loss, grad, gradOutput);

        Assert.True(lossWithout.SequenceEqual(loss), $"{context}: the losses changed with grad_output");
        double relative = Expect.IsFloat<T>() ? 1e-6 : 3e-15;
        Expect.Rows(grad, expectedGrad,
            (r, _, _) => relative * Math.Abs(expected.Scale * upstream[r]) * expected.TargetAbsMass[r], context + " grad");
    }

    private static void Run<T>(Width width, bool soft, Matrix<T> logits, long[] labels, Matrix<T> target, T[]? weight,
        CrossEntropyOptions options, T[] loss, Matrix<T> grad, T[]? gradOutput)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (soft)
        {
            Ops.SoftCrossEntropy(width, logits, target, weight, options, loss, grad, gradOutput);
        }
        else
        {
            Ops.CrossEntropy(width, logits, labels, weight, options, loss, grad, gradOutput);
        }
    }

    /// <summary>
    /// NaN and ±∞ upstream gradients are not rejected: each makes every entry of its own row
    /// non-finite (NaN gives NaN, as PyTorch) and leaves the other rows as they were; an ignored
    /// row (hard labels) and an all-zero target row (soft) keep a zero gradient whatever their
    /// upstream gradient.
    /// </summary>
    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void NonFiniteUpstreamGradientsStayInTheirRow(Width width, string dtype)
    {
        if (dtype == "float32")
        {
            NonFinite<float>(width);
        }
        else
        {
            NonFinite<double>(width);
        }
    }

    private static void NonFinite<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        NonFinite<T>(width, 19, smoothing: 0.05);
        NonFinite<T>(width, LongCols, smoothing: 0.05);
        NonFinite<T>(width, LongCols, smoothing: 0);
    }

    private static void NonFinite<T>(Width width, int cols, double smoothing)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var options = new CrossEntropyOptions { Reduction = Reduction.None, LabelSmoothing = smoothing };
        Matrix<T> logits = TestData.Uniform<T>(31, 5, cols, cols, -4, 4);
        int chunk = (int)NativeSoftmax.Kernels.LongRow<NativeSoftmax.Simd.Vec256<float>, float>.ChunkLength;
        for (int c = chunk; c < Math.Min(cols, 2 * chunk); c++)
        {
            // In a long row, a chunk of −∞ only in the rows of infinite upstream gradient: 0·∞ there too.
            logits[3, c] = logits[4, c] = T.NegativeInfinity;
        }
        long[] labels = [3, 0, -100, 18, 7];
        Matrix<T> target = TestData.Uniform<T>(32, 5, cols, cols, 0, 1);
        for (int c = 0; c < cols; c++)
        {
            target[2, c] = T.Zero; // the soft row that asks for nothing
        }
        T[] gradOutput = [T.CreateTruncating(0.5), T.NaN, T.NaN, T.PositiveInfinity, T.NegativeInfinity];
        foreach (bool soft in new[] { false, true })
        {
            string context = $"{(soft ? "cross_entropy_soft" : "cross_entropy")} width={width} dtype={TestData.Name<T>()} cols={cols} smoothing={smoothing} grad_output [0.5, NaN, NaN, inf, -inf]";
            var smoothed = soft ? options with { LabelSmoothing = 0 } : options; // smoothing would make the zero soft row ask for something
            var grad = new Matrix<T>(5, cols, cols);
            Run(width, soft, logits, labels, target, null, smoothed, new T[5], grad, gradOutput);
            var finiteOnly = new Matrix<T>(5, cols, cols);
            Run(width, soft, logits, labels, target, null, smoothed, new T[5], finiteOnly, [T.CreateTruncating(0.5), T.One, T.One, T.One, T.One]);
            for (int c = 0; c < cols; c++)
            {
                Assert.True(grad[0, c] == finiteOnly[0, c], $"{context}: row 0 [{c}] = {grad[0, c]}, expected {finiteOnly[0, c]} (a finite row)");
                Assert.True(T.IsNaN(grad[1, c]), $"{context}: row 1 [{c}] = {grad[1, c]}, expected NaN");
                Assert.True(grad[2, c] == T.Zero, $"{context}: row 2 [{c}] = {grad[2, c]}, expected 0 (a row that asks for nothing)");
                Assert.True(!T.IsFinite(grad[3, c]) && !T.IsFinite(grad[4, c]),
                    $"{context}: rows 3, 4 [{c}] = {grad[3, c]}, {grad[4, c]}, expected non-finite");
                if (!soft)
                {
                    // Hard labels: every class but the label is NaN (s·(o_j·Σy − y_j) with s = ±∞), on short
                    // rows and on long ones, with smoothing or without.
                    Assert.True((c == labels[3] || T.IsNaN(grad[3, c])) && (c == labels[4] || T.IsNaN(grad[4, c])),
                        $"{context}: rows 3, 4 [{c}] = {grad[3, c]}, {grad[4, c]}, expected NaN");
                }
            }
        }
    }

    /// <summary>
    /// An infinite upstream gradient with label smoothing and class weights, on a row whose second
    /// half lies 200 below its maximum (float32 exp(z − max) underflows there, exp(z − m_chunk) does
    /// not) and weighs −1: every class but the label is NaN (0·∞, and ∞ − ∞ where the weight is +1)
    /// on the longest short row and on the shortest long one alike. Long rows once gave +∞ there,
    /// scaling each chunk by exp(m_chunk − max)·∞ (found by review).
    /// </summary>
    [Theory, MemberData(nameof(Cases.EveryWidth), MemberType = typeof(Cases))]
    public void AnInfiniteUpstreamGradientGivesTheSameNaNOnLongRowsWithWeights(Width width)
    {
        int chunk = (int)NativeSoftmax.Kernels.LongRow<NativeSoftmax.Simd.Vec256<float>, float>.ChunkLength;
        // +∞, or a finite upstream gradient whose product with grad_scale overflows float32.
        foreach ((float upstream, double gradScale) in new[] { (float.PositiveInfinity, 1.0), (float.MaxValue, 1e6) })
        foreach (int cols in new[] { 2 * chunk - 1, 2 * chunk })
        {
            Matrix<float> logits = TestData.Uniform<float>(9, 1, cols, cols, -1, 1);
            float[] weight = new float[cols];
            for (int j = 0; j < cols; j++)
            {
                if (j >= chunk)
                {
                    logits[0, j] -= 200;
                }
                weight[j] = j >= chunk ? -1 : 1;
            }
            var options = new CrossEntropyOptions { Reduction = Reduction.None, LabelSmoothing = 0.1, GradScale = gradScale };
            var grad = new Matrix<float>(1, cols, cols);
            Ops.CrossEntropy(width, logits, [0L], weight, options, new float[1], grad, [upstream]);
            for (int j = 1; j < cols; j++)
            {
                Assert.True(float.IsNaN(grad[0, j]), $"width={width} cols={cols} grad_output {upstream} grad_scale {gradScale}: grad[{j}] = {grad[0, j]}, expected NaN");
            }
        }
    }

    [Fact]
    public void GradOutputWithAReducedLossIsRejected()
    {
        foreach (Reduction reduction in new[] { Reduction.Sum, Reduction.Mean })
        {
            double[] loss = Sentinels(1), grad = Sentinels(12);
            var options = new CrossEntropyOptions { Reduction = reduction };
            var hard = Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.CrossEntropy<double>(
                3, 4, Logits(), 4, Labels, default, [1.0, 2.0, 3.0], loss, grad, 4, options));
            Assert.Equal("gradOutput", hard.ParamName);
            Assert.Contains("grad_scale", hard.Message);
            var soft = Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.CrossEntropy<double>(
                3, 4, Logits(), 4, Logits(), 4, default, [1.0, 2.0, 3.0], loss, grad, 4, options));
            Assert.Equal("gradOutput", soft.ParamName);
            Untouched(loss, $"reduction {reduction}");
            Untouched(grad, $"reduction {reduction}");
        }
        // An empty gradOutput is no upstream gradient: accepted with any reduction.
        double[] mean = new double[1];
        SoftmaxPrimitives.CrossEntropy<double>(3, 4, Logits(), 4, Labels, default, default, mean, default, 4);
        Assert.True(double.IsFinite(mean[0]));
    }

    [Fact]
    public void GradOutputOfAnotherLengthOrOverlappingAnOutputIsRejected()
    {
        var none = new CrossEntropyOptions { Reduction = Reduction.None };
        double[] loss = Sentinels(3), grad = Sentinels(12);
        var length = Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.CrossEntropy<double>(
            3, 4, Logits(), 4, Labels, default, [1.0, 2.0], loss, grad, 4, none));
        Assert.Equal("gradOutput", length.ParamName);
        Untouched(loss, "short gradOutput");
        Untouched(grad, "short gradOutput");

        double[] buffer = Sentinels(20);
        var overLoss = Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.CrossEntropy<double>(
            3, 4, Logits(), 4, Labels, default, buffer.AsSpan(0, 3), buffer.AsSpan(2, 3), default, 4, none));
        Assert.Equal("loss", overLoss.ParamName);
        Assert.Contains("grad_output", overLoss.Message);
        var overGrad = Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.CrossEntropy<double>(
            3, 4, Logits(), 4, Logits(), 4, default, buffer.AsSpan(0, 3), default, buffer.AsSpan(1, 12), 4, none));
        Assert.Equal("grad", overGrad.ParamName);
        Assert.Contains("grad_output", overGrad.Message);
        Untouched(buffer, "overlapping gradOutput");
    }

    // ---- the C exports' options struct ----------------------------------------------------------

    [Fact]
    public void AVersion1StructLeavesGradOutputNull()
    {
        // What a caller compiled against version 1 passes: struct_size 32. The bytes after it are
        // not its own (here they hold a pointer): they are neither read nor checked.
        var options = Version2(CrossEntropyOptionsV2.Version1Size, (void*)0x1234);
        Assert.True(new CrossEntropyOptionsPointer(&options).TryRead(out LossOptions read, out Failure? failure), failure?.Message);
        Assert.True(read.GradOutput == null);
        Assert.Equal(Reduction.None, read.Reduction);
        Assert.Equal(-0.5, read.GradScale);
        Assert.Equal(32, (int)System.Runtime.InteropServices.Marshal.OffsetOf<CrossEntropyOptionsV2>(nameof(CrossEntropyOptionsV2.GradOutput)));
    }

    [Fact]
    public void AVersion2StructGivesItsGradOutput()
    {
        double upstream = 2;
        var options = Version2((uint)sizeof(CrossEntropyOptionsV2), &upstream);
        Assert.True(new CrossEntropyOptionsPointer(&options).TryRead(out LossOptions read, out Failure? failure), failure?.Message);
        Assert.True(read.GradOutput == &upstream);
    }

    [Fact]
    public void BytesPastWhatTheSizeCoversWholly()
    {
        // struct_size 36 covers half of grad_output: those 4 bytes are not a field this library
        // reads, so they must be zero like a newer header's fields.
        var half = Version2(36, (void*)0x0000_0001_0000_0000);
        Assert.True(new CrossEntropyOptionsPointer(&half).TryRead(out LossOptions read, out _));
        Assert.True(read.GradOutput == null);
        half = Version2(36, (void*)0x7);
        Assert.False(new CrossEntropyOptionsPointer(&half).TryRead(out _, out Failure? failure));
        Assert.Contains("offset 32", failure!.Message);

        // A newer header's struct: version 2 and 16 more bytes, which must be zero.
        byte* larger = stackalloc byte[sizeof(CrossEntropyOptionsV2) + 16];
        new Span<byte>(larger, sizeof(CrossEntropyOptionsV2) + 16).Clear();
        *(CrossEntropyOptionsV2*)larger = Version2((uint)sizeof(CrossEntropyOptionsV2) + 16, larger);
        Assert.True(new CrossEntropyOptionsPointer((CrossEntropyOptionsV2*)larger).TryRead(out read, out failure), failure?.Message);
        Assert.True(read.GradOutput == larger);
        larger[44] = 1;
        Assert.False(new CrossEntropyOptionsPointer((CrossEntropyOptionsV2*)larger).TryRead(out _, out failure));
        Assert.Equal(Status.InvalidArgument, failure!.Status);
        Assert.Contains("offset 44", failure.Message);
    }

    private static CrossEntropyOptionsV2 Version2(uint size, void* gradOutput) => new()
    {
        StructSize = size,
        Reduction = (int)Reduction.None,
        IgnoreIndex = -100,
        LabelSmoothing = 0,
        GradScale = -0.5,
        GradOutput = gradOutput,
    };

    private static readonly long[] Labels = [0, 1, 2];

    private static double[] Logits() => TestData.Uniform<double>(5, 3, 4, 4, -3, 3).Span.ToArray();

    private static double[] Sentinels(int length) => Enumerable.Repeat(Matrix<double>.Sentinel, length).ToArray();

    private static void Untouched(double[] buffer, string context) =>
        Assert.True(buffer.All(v => v == Matrix<double>.Sentinel), $"{context}: an output was written although the call failed");
}
