using System.Numerics;
using Xunit.Abstractions;

namespace NativeSoftmax.Tests;

/// <summary>
/// softmax, log_softmax and their backward passes against the float64 reference, at every width
/// and through the public API, for every row length in <see cref="Cases.Lengths"/>, contiguous,
/// strided and in place.
/// </summary>
public class RowOperationTests(ITestOutputHelper output)
{
    /// <summary>A layout and input range; pads are added to cols to make the leading dimensions.</summary>
    private sealed record Layout(string Name, int Rows, int PadIn, int PadOut, double Range, bool NegativeInfinity, InPlace InPlace);

    private enum InPlace { No, IntoFirstInput, IntoSecondInput }

    private static readonly Layout[] ForwardLayouts =
    [
        new("contiguous, logits in [-100, 100]", 2, 0, 0, 100, false, InPlace.No),
        new("strided, logits in [-1e4, 1e4]", 3, 5, 2, 1e4, false, InPlace.No),
        new("in place, strided, logits in [-100, 100] with -inf", 2, 3, 3, 100, true, InPlace.IntoFirstInput),
    ];

    private static readonly Layout[] BackwardLayouts =
    [
        new("contiguous", 2, 0, 0, 1, false, InPlace.No),
        new("strided", 3, 3, 1, 1, false, InPlace.No),
        new("in place into grad_output", 2, 2, 2, 1, false, InPlace.IntoFirstInput),
        new("in place into output", 2, 1, 1, 1, false, InPlace.IntoSecondInput),
    ];

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void SoftmaxMatchesReference(Width width, string dtype) =>
        Report(width, dtype, "softmax", ForwardLayouts.Length,
            dtype == "float32" ? Forward<float>(width, isLog: false) : Forward<double>(width, isLog: false));

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void LogSoftmaxMatchesReference(Width width, string dtype) =>
        Report(width, dtype, "log_softmax", ForwardLayouts.Length,
            dtype == "float32" ? Forward<float>(width, isLog: true) : Forward<double>(width, isLog: true));

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void SoftmaxBackwardMatchesReference(Width width, string dtype) =>
        Report(width, dtype, "softmax_backward", BackwardLayouts.Length,
            dtype == "float32" ? Backward<float>(width, isLog: false) : Backward<double>(width, isLog: false));

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void LogSoftmaxBackwardMatchesReference(Width width, string dtype) =>
        Report(width, dtype, "log_softmax_backward", BackwardLayouts.Length,
            dtype == "float32" ? Backward<float>(width, isLog: true) : Backward<double>(width, isLog: true));

    private void Report(Width width, string dtype, string op, int layouts, (int Checked, double Worst) result)
    {
        Assert.True(Cases.Lengths.Length * layouts == result.Checked,
            $"{op} {width} {dtype}: checked {result.Checked} cases, expected {Cases.Lengths.Length * layouts}");
        output.WriteLine($"{op} {width} {dtype}: {result.Checked} cases, worst error {result.Worst:P1} of the tolerance");
    }

    /// <summary>
    /// Forward tolerances: the header's float32 bounds as written (softmax 1e-6 relative, log_softmax
    /// 2e-6·(1 + |exact|)); float64 at 2e-15 and 1e-15 (about 9 and 5 ulp) instead of the 1e-12
    /// first asked for.
    /// </summary>
    private static double ForwardTolerance<T>(bool isLog, double expected) =>
        (isLog, Expect.IsFloat<T>()) switch
        {
            (false, true) => 1e-6 * Math.Abs(expected) + 1e-37,
            (false, false) => 2e-15 * Math.Abs(expected) + 1e-306,
            (true, true) => 2e-6 * (1 + Math.Abs(expected)),
            (true, false) => 1e-15 * (1 + Math.Abs(expected)),
        };

    private static (int, double) Forward<T>(Width width, bool isLog)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int count = 0;
        double worst = 0;
        string op = isLog ? "log_softmax" : "softmax";
        for (int layoutIndex = 0; layoutIndex < ForwardLayouts.Length; layoutIndex++)
        {
            Layout layout = ForwardLayouts[layoutIndex];
            foreach (int cols in Cases.Lengths)
            {
                int seed = 100_000 * (layoutIndex + 1) + cols;
                string context = $"{op} width={width} dtype={TestData.Name<T>()} cols={cols} rows={layout.Rows} seed={seed} ({layout.Name})";
                Matrix<T> logits = TestData.Uniform<T>(seed, layout.Rows, cols, cols + layout.PadIn, -layout.Range, layout.Range);
                if (layout.NegativeInfinity)
                {
                    var random = new Random(seed);
                    logits[0, random.Next(cols)] = T.NegativeInfinity;   // may make a 1-column row all −∞: NaN, as the header says
                    logits[layout.Rows - 1, random.Next(cols)] = T.NegativeInfinity;
                }
                double[][] z = logits.RowsAsDouble();
                Func<double[], double[]> reference = isLog ? Reference.LogSoftmax : Reference.Softmax;
                double[][] expected = z.Select(reference).ToArray();

                Matrix<T> result = layout.InPlace == InPlace.No ? new Matrix<T>(layout.Rows, cols, cols + layout.PadOut) : logits;
                if (isLog)
                {
                    Ops.LogSoftmax(width, logits, result);
                }
                else
                {
                    Ops.Softmax(width, logits, result);
                }
                worst = Math.Max(worst, Expect.Rows(result, expected, (_, _, e) => ForwardTolerance<T>(isLog, e), context));
                count++;
            }
        }
        return (count, worst);
    }

    /// <summary>Rows that go by chunks of columns (<see cref="NativeSoftmax.Kernels.ChunkedRowLoop{TVec, T}"/>):
    /// one below the shortest, the shortest, and three chunks and a remainder.</summary>
    private static readonly int[] LongLengths = [2 * Chunk - 1, 2 * Chunk, 3 * Chunk + 5];

    private const int Chunk = (int)NativeSoftmax.Kernels.LongRow<NativeSoftmax.Simd.Vec256<float>, float>.ChunkLength;

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void BackwardPassesOfLongRowsMatchReference(Width width, string dtype)
    {
        foreach (bool isLog in new[] { false, true })
        {
            (int count, _) = dtype == "float32" ? Backward<float>(width, isLog, LongLengths) : Backward<double>(width, isLog, LongLengths);
            Assert.True(count == BackwardLayouts.Length * LongLengths.Length, $"{(isLog ? "log_" : "")}softmax_backward long rows {width} {dtype}: {count} cases checked");
        }
    }

    private static (int, double) Backward<T>(Width width, bool isLog, int[]? lengths = null)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int count = 0;
        double worst = 0;
        string op = isLog ? "log_softmax_backward" : "softmax_backward";
        double relative = Expect.IsFloat<T>() ? 1e-6 : 2e-15;
        for (int layoutIndex = 0; layoutIndex < BackwardLayouts.Length; layoutIndex++)
        {
            Layout layout = BackwardLayouts[layoutIndex];
            foreach (int cols in lengths ?? Cases.Lengths)
            {
                int seed = 200_000 * (layoutIndex + 1) + cols;
                string context = $"{op} width={width} dtype={TestData.Name<T>()} cols={cols} rows={layout.Rows} seed={seed} ({layout.Name})";
                int ld = cols + layout.PadIn;
                Matrix<T> gradOutput = TestData.Uniform<T>(seed, layout.Rows, cols, ld, -1, 1);
                Matrix<T> forward = isLog
                    ? TestData.LogProbabilities<T>(seed + 1, layout.Rows, cols, ld + 1)
                    : TestData.Probabilities<T>(seed + 1, layout.Rows, cols, ld + 1);
                if (layout.InPlace != InPlace.No)
                {
                    // In place needs the output to share the input's leading dimension.
                    forward = new Matrix<T>(layout.Rows, cols, ld).Fill((r, c) => double.CreateTruncating(forward[r, c]));
                }
                double[][] g = gradOutput.RowsAsDouble(), o = forward.RowsAsDouble();
                Func<double[], double[], double[]> reference = isLog ? Reference.LogSoftmaxBackward : Reference.SoftmaxBackward;
                double[][] expected = g.Zip(o, reference).ToArray();
                // Error scale of each element: the magnitudes that enter it.
                double[][] scale = g.Zip(o, (gr, or) =>
                {
                    double absG = gr.Sum(Math.Abs), absGO = gr.Zip(or, (a, b) => Math.Abs(a * b)).Sum();
                    return isLog
                        ? gr.Select((gi, i) => Math.Abs(gi) + Math.Exp(or[i]) * absG).ToArray()
                        : gr.Select((gi, i) => or[i] * (Math.Abs(gi) + absGO)).ToArray();
                }).ToArray();

                Matrix<T> result = layout.InPlace switch
                {
                    InPlace.IntoFirstInput => gradOutput,
                    InPlace.IntoSecondInput => forward,
                    _ => new Matrix<T>(layout.Rows, cols, cols + layout.PadOut),
                };
                if (isLog)
                {
                    Ops.LogSoftmaxBackward(width, gradOutput, forward, result);
                }
                else
                {
                    Ops.SoftmaxBackward(width, gradOutput, forward, result);
                }
                worst = Math.Max(worst, Expect.Rows(result, expected, (r, c, _) => relative * scale[r][c] + 1e-300, context));
                count++;
            }
        }
        return (count, worst);
    }
}
