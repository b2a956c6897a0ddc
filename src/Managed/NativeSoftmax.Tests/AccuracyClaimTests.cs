namespace NativeSoftmax.Tests;

/// <summary>The header's accuracy promises taken literally.</summary>
public class AccuracyClaimTests
{
    /// <summary>
    /// nativesoftmax.h: "Accuracy (float32): softmax within 1e-6 relative of the exact value", on
    /// logits in [−100, 100] where z − m rounded to float32 alone would cost |z − m|·2⁻²⁴ relative
    /// (1.9e-6 at z − m ≈ −53, seed 100003, cols 3): the kernels must carry that rounding error.
    /// </summary>
    [Fact]
    public void Float32SoftmaxIsWithin1e6RelativeAsTheHeaderSays()
    {
        int checkedRows = 0;
        foreach (Width width in Cases.AllWidths)
        {
            foreach (int cols in Cases.Lengths)
            {
                int seed = 100_000 + cols;
                Matrix<float> logits = TestData.Uniform<float>(seed, 2, cols, cols, -100, 100);
                var result = new Matrix<float>(2, cols, cols);
                Ops.Softmax(width, logits, result);
                double[][] expected = logits.RowsAsDouble().Select(Reference.Softmax).ToArray();
                Expect.Rows(result, expected, (_, _, e) => 1e-6 * Math.Abs(e) + 1e-37,
                    $"softmax (header's literal 1e-6) width={width} dtype=float32 cols={cols} seed={seed}");
                checkedRows += 2;
            }
        }
        Assert.Equal(Cases.AllWidths.Length * Cases.Lengths.Length * 2, checkedRows);
    }
}
