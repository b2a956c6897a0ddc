using System.Numerics;

namespace NativeSoftmax.Tests;

/// <summary>The softmax Jacobian o_i·(δ_ij − o_j) at every width, and its agreement with the VJP.</summary>
public class JacobianTests
{
    private static readonly int[] Lengths = [.. Enumerable.Range(1, 49), 64, 65, 200];

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void JacobianMatchesReference(Width width, string dtype)
    {
        int count = dtype == "float32" ? Check<float>(width) : Check<double>(width);
        Assert.True(count == Lengths.Length, $"softmax_jacobian {width} {dtype}: {count} lengths checked");
    }

    private static int Check<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int count = 0;
        double relative = Expect.IsFloat<T>() ? 2e-6 : 4e-15;
        foreach (int cols in Lengths)
        {
            int seed = 800_000 + cols;
            string context = $"softmax_jacobian width={width} dtype={TestData.Name<T>()} cols={cols} seed={seed}";
            T[] logits = TestData.Vector<T>(seed, cols, -20, 20);
            double[] z = logits.AsDouble();
            double[,] expected = Reference.Jacobian(z);
            double[] o = Reference.Softmax(z);
            var jacobian = new Matrix<T>(cols, cols, cols + 3);
            Ops.Jacobian(width, logits, jacobian);
            Expect.Rows(jacobian, Enumerable.Range(0, cols).Select(i => Enumerable.Range(0, cols).Select(j => expected[i, j]).ToArray()).ToArray(),
                (i, j, _) => relative * o[i] * ((i == j ? 1 : 0) + o[j]) + 1e-300, context);
            Assert.Equal(z, logits.AsDouble());   // the logits are an input only
            count++;
        }
        return count;
    }
}
