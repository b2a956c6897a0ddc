namespace NativeSoftmax.Tests;

/// <summary>No operation allocates on the managed heap per call (issue: "no allocation per call").</summary>
public class AllocationTests
{
    [Theory]
    [InlineData(7)]
    [InlineData(1001)]
    public void NoOperationAllocatesPerCall(int cols)
    {
        const int rows = 4;
        var random = new Random(cols);
        float[] z = Enumerable.Range(0, rows * cols).Select(_ => (float)(random.NextDouble() * 20 - 10)).ToArray();
        float[] o = new float[z.Length], g = new float[z.Length], dz = new float[z.Length], jacobian = new float[cols * cols];
        float[] soft = Enumerable.Range(0, rows * cols).Select(_ => (float)random.NextDouble()).ToArray();
        float[] weight = Enumerable.Range(0, cols).Select(_ => 1f + (float)random.NextDouble()).ToArray();
        long[] labels = Enumerable.Range(0, rows).Select(r => (long)(r * 3 % cols)).ToArray();
        float[] loss = new float[rows];
        var options = new CrossEntropyOptions { LabelSmoothing = 0.1 };

        void CallEveryOperation()
        {
            SoftmaxPrimitives.Softmax<float>(rows, cols, z, cols, o, cols);
            SoftmaxPrimitives.LogSoftmax<float>(rows, cols, z, cols, o, cols);
            SoftmaxPrimitives.SoftmaxBackward<float>(rows, cols, soft, cols, o, cols, dz, cols);
            SoftmaxPrimitives.LogSoftmaxBackward<float>(rows, cols, soft, cols, o, cols, dz, cols);
            SoftmaxPrimitives.SoftmaxJacobian<float>(z.AsSpan(0, cols), jacobian, cols);
            SoftmaxPrimitives.CrossEntropy<float>(rows, cols, z, cols, labels, weight, loss, g, cols, options);
            SoftmaxPrimitives.CrossEntropy<float>(rows, cols, z, cols, soft, cols, weight, loss, g, cols, options);
            SoftmaxPrimitives.CrossEntropy<float>(cols, z, labels, g);
        }

        CallEveryOperation(); // JIT and static initialisation happen here
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10; i++)
        {
            CallEveryOperation();
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated == 0, $"cols={cols}: 10 rounds of every operation allocated {allocated} bytes");
        Assert.True(float.IsFinite(loss[0]) && o.Any(v => v != 0), $"cols={cols}: the operations did not run");
    }
}
