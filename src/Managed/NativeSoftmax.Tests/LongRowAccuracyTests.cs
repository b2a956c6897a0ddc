using System.Numerics;

namespace NativeSoftmax.Tests;

/// <summary>
/// The float32 bounds hold for rows far longer than the workload sizes: the sum of exponentials
/// must not lose accuracy with row length (a single float accumulator per lane loses about
/// n/lanes·2^−24 relative, 1.6e-6 at 262144 classes on 128-bit vectors).
/// </summary>
public class LongRowAccuracyTests
{
    public static TheoryData<Width, int> WidthsAndLengths()
    {
        var data = new TheoryData<Width, int>();
        foreach (Width width in new[] { Width.V128, Width.V256, Width.V512 })
        {
            foreach (int cols in new[] { 128256, 1 << 20, (1 << 20) + 4096 + 3 }) // the last: more chunks than LongRow keeps exponentials for
            {
                data.Add(width, cols);
            }
        }
        return data;
    }

    [Theory, MemberData(nameof(WidthsAndLengths))]
    public void SoftmaxAndLossStayWithinTheFloat32Bounds(Width width, int cols)
    {
        const int seed = 1729;
        string context = $"cols={cols} width={width} seed={seed}";
        Matrix<float> logits = TestData.Uniform<float>(seed, 1, cols, cols, -100, 100);
        double[] z = Enumerable.Range(0, cols).Select(j => (double)logits[0, j]).ToArray();
        double max = z.Max();
        double sum = 0, compensation = 0;
        foreach (double v in z)
        {
            // Kahan summation: the float64 reference must itself be far better than 1e-6.
            double term = Math.Exp(v - max) - compensation;
            double next = sum + term;
            compensation = (next - sum) - term;
            sum = next;
        }

        var probabilities = new Matrix<float>(1, cols, cols);
        Ops.Softmax(width, logits, probabilities);
        double worst = 0;
        for (int j = 0; j < cols; j++)
        {
            double exact = Math.Exp(z[j] - max) / sum;
            // |a − r| ≤ 1e-6·|r| + 1e-37 (values below FLT_MIN flush to 0), as a ratio to 1e-6.
            worst = Math.Max(worst, Math.Abs(probabilities[0, j] - exact) / (exact + 1e-31));
        }
        Assert.True(worst <= 1e-6, $"{context}: softmax worst relative error {worst:E2} > 1e-6");

        var loss = new float[1];
        Ops.CrossEntropy(width, logits, [7], null, new CrossEntropyOptions { Reduction = Reduction.Sum }, loss, null);
        double exactLoss = max + Math.Log(sum) - z[7];
        double lossError = Math.Abs(loss[0] - exactLoss) / (1 + Math.Abs(exactLoss));
        Assert.True(lossError <= 2e-6, $"{context}: loss {loss[0]} vs {exactLoss}, error {lossError:E2} > 2e-6·(1 + |exact|)");
    }
}
