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
        long allocated = FewestBytesOfABatch(CallEveryOperation);
        Assert.True(allocated == 0, $"cols={cols}: every batch of 10 rounds of every operation allocated, the fewest {allocated} bytes");
        Assert.True(float.IsFinite(loss[0]) && o.Any(v => v != 0), $"cols={cols}: the operations did not run");
    }

    /// <summary>int labels are read where they are, per-row upstream gradients are a span, and Half
    /// goes through this thread's float scratch (ThreadScratch, native memory kept between calls): none
    /// allocates per call once warm.</summary>
    [Theory]
    [InlineData(7)]
    [InlineData(1001)]
    public void IntLabelsGradOutputAndHalfAllocateNothingPerCall(int cols)
    {
        const int rows = 4;
        var random = new Random(cols);
        float[] z = Enumerable.Range(0, rows * cols).Select(_ => (float)(random.NextDouble() * 20 - 10)).ToArray();
        float[] g = new float[z.Length], loss = new float[rows], upstream = [1, -2, 0.5f, 3];
        int[] labels = Enumerable.Range(0, rows).Select(r => r * 3 % cols).ToArray();
        Half[] zh = z.Select(v => (Half)v).ToArray(), oh = new Half[z.Length], gh = new Half[z.Length], jh = new Half[cols * cols];
        Half[] lossh = new Half[rows], upstreamh = upstream.Select(v => (Half)v).ToArray();
        var none = new CrossEntropyOptions { Reduction = Reduction.None };

        void CallEveryOperation()
        {
            SoftmaxPrimitives.CrossEntropy<float>(rows, cols, z, cols, labels, default, upstream, loss, g, cols, none);
            SoftmaxPrimitives.CrossEntropy<float>(rows, cols, z, cols, z, cols, default, upstream, loss, g, cols, none);
            SoftmaxPrimitives.CrossEntropy<float>(cols, z, labels, g);
            SoftmaxPrimitives.Softmax<Half>(rows, cols, zh, cols, oh, cols);
            SoftmaxPrimitives.LogSoftmaxBackward<Half>(rows, cols, zh, cols, oh, cols, gh, cols);
            SoftmaxPrimitives.SoftmaxJacobian<Half>(zh.AsSpan(0, cols), jh, cols);
            SoftmaxPrimitives.CrossEntropy<Half>(rows, cols, zh, cols, labels, default, upstreamh, lossh, gh, cols, none);
            SoftmaxPrimitives.CrossEntropy<Half>(rows, cols, zh, cols, oh, cols, default, lossh, gh, cols, none);
        }

        CallEveryOperation();
        long allocated = FewestBytesOfABatch(CallEveryOperation);
        Assert.True(allocated == 0, $"cols={cols}: every batch of 10 rounds allocated, the fewest {allocated} bytes");
        Assert.True(float.IsFinite(loss[0]) && Half.IsFinite(lossh[0]) && oh.Any(v => v != Half.Zero), $"cols={cols}: the operations did not run");
    }

    /// <summary>
    /// The fewest bytes this thread allocated over one of three batches of 10 calls. An allocation
    /// per call shows in every batch; a one-off of the runtime's (a tiered recompilation or a type
    /// loaded on this thread, seen once in a full parallel run: 8040 bytes in one batch) shows in
    /// one batch at most, and is not what these tests look for.
    /// </summary>
    internal static long FewestBytesOfABatch(Action call)
    {
        long fewest = long.MaxValue;
        for (int batch = 0; batch < 3; batch++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 10; i++)
            {
                call();
            }
            fewest = Math.Min(fewest, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        return fewest;
    }
}
