using NativeSoftmax.Operations;

namespace NativeSoftmax.Tests;

/// <summary>
/// The header's memory rule: a thread that computes short rows across lanes keeps a tile scratch,
/// allocated on its first such call and reused by its later calls, and freed some time after the
/// thread ends (by the runtime's finalizer). Runs alone: it counts the native memory that every
/// thread's scratch holds.
/// </summary>
[Collection(nameof(ThreadCountCollection))]
public class ThreadScratchTests
{
    [Fact]
    public void TileScratchIsReusedThenFreedAfterItsThreadEnds()
    {
        // First the scratch of threads that ended before this test goes, so that no finalizer
        // frees any while it counts.
        Collect();
        long before = ThreadScratch.HeldBytes, during = 0, allocationsByTheSecondCall = -1;
        var thread = new Thread(() =>
        {
            // 64 rows of 16 columns: rows across lanes at every vector width, which take tiles.
            float[] logits = [.. Enumerable.Range(0, 64 * 16).Select(i => (i * 37 % 101) / 10f - 5f)];
            var probabilities = new float[logits.Length];
            SoftmaxPrimitives.Softmax<float>(64, 16, logits, 16, probabilities, 16);
            during = ThreadScratch.HeldBytes;
            long allocations = ThreadScratch.Allocations;
            SoftmaxPrimitives.Softmax<float>(64, 16, logits, 16, probabilities, 16);
            allocationsByTheSecondCall = ThreadScratch.Allocations - allocations;
        });
        thread.Start();
        thread.Join();

        Assert.True(during > before, $"the thread's first call held no new scratch ({before} → {during} bytes)");
        Assert.Equal(0, allocationsByTheSecondCall); // the second call reused the first one's scratch
        Collect();
        long after = ThreadScratch.HeldBytes;
        Assert.True(after <= before, $"scratch of an ended thread still held: {before} bytes before it, {after} after");
    }

    private static void Collect()
    {
        for (int pass = 0; pass < 3; pass++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
    }
}
