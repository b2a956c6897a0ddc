using System.Numerics;
using NativeSoftmax.Operations;
using NativeSoftmax.Threading;

namespace NativeSoftmax.Tests;

/// <summary>Tests that change <see cref="SoftmaxPrimitives.ThreadCount"/> (process-wide), or count the
/// memory of every thread's scratch, run alone.</summary>
[CollectionDefinition(nameof(ThreadCountCollection), DisableParallelization = true)]
public class ThreadCountCollection;

/// <summary>
/// Threads over rows (and over the columns of a long row): every operation gives the same bits at
/// 1, 2 and 7 threads, reduced losses included; the thread-count setting validates its input; a
/// call made while another thread's call holds the workers still computes right.
/// </summary>
[Collection(nameof(ThreadCountCollection))]
public class ThreadTests
{
    /// <summary>Shapes that cut into many blocks of rows, a few long rows, and one long row.</summary>
    public static TheoryData<string, int, int> Shapes()
    {
        var data = new TheoryData<string, int, int>();
        foreach (string dtype in Cases.Dtypes)
        {
            data.Add(dtype, 3001, 10);
            data.Add(dtype, 517, 999);
            data.Add(dtype, 3, 70_001);
            data.Add(dtype, 1, 300_007);
            data.Add(dtype, 1, (1 << 20) + 4096 + 3); // more chunks than LongRow keeps exponentials for
        }
        return data;
    }

    [Theory, MemberData(nameof(Shapes))]
    public void EveryOperationGivesTheSameBitsAtOneTwoAndSevenThreads(string dtype, int rows, int cols)
    {
        if (dtype == "float32")
        {
            Check<float>(rows, cols);
        }
        else
        {
            Check<double>(rows, cols);
        }
    }

    [Fact]
    public void ThreadCountIsValidatedAndZeroRestoresTheDefault()
    {
        int before = SoftmaxPrimitives.ThreadCount;
        try
        {
            SoftmaxPrimitives.ThreadCount = 3;
            Assert.Equal(3, SoftmaxPrimitives.ThreadCount);
            Assert.Throws<ArgumentOutOfRangeException>(() => SoftmaxPrimitives.ThreadCount = -1);
            Assert.Throws<ArgumentOutOfRangeException>(() => SoftmaxPrimitives.ThreadCount = WorkerPool.MaxThreads + 1);
            Assert.Equal(3, SoftmaxPrimitives.ThreadCount); // unchanged by the refused values
            SoftmaxPrimitives.ThreadCount = 0;
            Assert.Equal(WorkerPool.DefaultThreadCount(), SoftmaxPrimitives.ThreadCount);
        }
        finally
        {
            SoftmaxPrimitives.ThreadCount = before;
        }
    }

    [Theory]
    [InlineData("5", 5)]
    [InlineData("1", 1)]
    [InlineData("0", -1)] // not in [1, 1024]: ignored
    [InlineData("1025", -1)]
    [InlineData("two", -1)]
    [InlineData("", -1)]
    [InlineData("0003", 3)]
    [InlineData("+3", -1)] // digits alone, as the header says
    [InlineData(" 3", -1)]
    [InlineData("\t3", -1)]
    [InlineData("3 ", -1)]
    public void TheEnvironmentVariableSetsTheDefaultWhenItIsAValidCount(string value, int expected)
    {
        string? before = Environment.GetEnvironmentVariable(WorkerPool.ThreadCountVariable);
        try
        {
            Environment.SetEnvironmentVariable(WorkerPool.ThreadCountVariable, value);
            int processors = Math.Clamp(Environment.ProcessorCount, 1, WorkerPool.MaxThreads);
            Assert.Equal(expected == -1 ? processors : expected, WorkerPool.DefaultThreadCount());
        }
        finally
        {
            Environment.SetEnvironmentVariable(WorkerPool.ThreadCountVariable, before);
        }
    }

    /// <summary>
    /// Callers on many threads at once, each call either taking the workers or, finding them busy,
    /// running alone, give the bits of one thread. The cases read per-item results after the
    /// workers are done: a long row's chunk statistics (log_softmax, and cross-entropy's
    /// LongRow.Statistics) and the blocks' loss totals (cross-entropy over many blocks), which another
    /// caller's job must not overwrite before they are read.
    /// </summary>
    [Fact]
    public void CallsFromManyThreadsAtOnceAreEachRight()
    {
        int before = SoftmaxPrimitives.ThreadCount;
        try
        {
            var cases = new (string Name, Matrix<float> Logits, long[] Labels)[]
            {
                ("softmax 700x301", TestData.Uniform<float>(990_000, 700, 301, 301, -20, 20), []),
                ("log_softmax 1x300007", TestData.Uniform<float>(990_001, 1, 300_007, 300_007, -20, 20), []),
                ("cross_entropy 3000x37", TestData.Uniform<float>(990_002, 3000, 37, 37, -20, 20),
                    TestData.Labels(990_003, 3000, 37, ignoreIndex: -100)),
                ("cross_entropy 1x70001", TestData.Uniform<float>(990_004, 1, 70_001, 70_001, -20, 20), [12_345]),
            };
            SoftmaxPrimitives.ThreadCount = 1;
            float[][] expected = [.. cases.Select(c => Compute(c.Name, c.Logits, c.Labels))];
            SoftmaxPrimitives.ThreadCount = 4;
            var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
            Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, caller =>
            {
                for (int round = 0; round < 40; round++)
                {
                    int k = (caller + round) % cases.Length;
                    if (!Compute(cases[k].Name, cases[k].Logits, cases[k].Labels).AsSpan().SequenceEqual(expected[k]))
                    {
                        failures.Add($"{cases[k].Name}: caller {caller} round {round}");
                    }
                }
            });
            Assert.Empty(failures);
        }
        finally
        {
            SoftmaxPrimitives.ThreadCount = before;
        }

        // The output, and for cross-entropy the mean loss after the gradient.
        static float[] Compute(string name, Matrix<float> logits, long[] labels)
        {
            var output = new Matrix<float>(logits.Rows, logits.Cols, logits.Cols);
            if (name.StartsWith("softmax", StringComparison.Ordinal))
            {
                Ops.Softmax(Width.PublicApi, logits, output);
                return output.Data;
            }
            if (name.StartsWith("log_softmax", StringComparison.Ordinal))
            {
                Ops.LogSoftmax(Width.PublicApi, logits, output);
                return output.Data;
            }
            float[] loss = new float[1];
            Ops.CrossEntropy(Width.PublicApi, logits, labels, null, new CrossEntropyOptions(), loss, output);
            return [.. output.Data, loss[0]];
        }
    }

    /// <summary>
    /// A job's per-item results are the caller's until it releases the pool: until then another
    /// job cannot start (it would write over them), and a caller that tries runs inline instead.
    /// </summary>
    [Fact]
    public unsafe void TheResultsStayTheCallersUntilItReleasesThePool()
    {
        long state = 0;
        Assert.True(WorkerPool.TryRun(&WriteIndex, &state, 64, 2, 1, out double* results));
        try
        {
            for (int i = 0; i < 64; i++)
            {
                Assert.Equal(i, results[i]);
            }
            bool other = true;
            var caller = new Thread(() => other = WorkerPool.TryRun(&WriteIndex, null, 64, 2, 1, out _));
            caller.Start();
            caller.Join();
            Assert.False(other); // the pool is still held: the other caller's job did not run
        }
        finally
        {
            WorkerPool.Release();
        }
        Assert.True(WorkerPool.TryRun(&WriteIndex, null, 64, 2, 1, out double* again));
        double last = again[63];
        WorkerPool.Release();
        Assert.Equal(63, last);

        static void WriteIndex(void* state, long item, double* result) => *result = item;
    }

    /// <summary>A worker whose join says no (it could not get its scratch) takes no item: the caller
    /// runs them all. Each item spins about 20 µs, so a worker that joined would take some.</summary>
    [Fact]
    public unsafe void AWorkerThatCannotJoinLeavesEveryItemToTheCaller()
    {
        const int Items = 256;
        int* ranOn = stackalloc int[Items];
        Assert.True(WorkerPool.TryRun(&WriteThread, &Refuse, ranOn, Items, 2, 0, out _));
        WorkerPool.Release();
        for (int i = 0; i < Items; i++)
        {
            Assert.Equal(Environment.CurrentManagedThreadId, ranOn[i]);
        }

        static bool Refuse(void* state) => false;

        static void WriteThread(void* state, long item, double* result)
        {
            Thread.SpinWait(2000);
            ((int*)state)[item] = Environment.CurrentManagedThreadId;
        }
    }

    /// <summary>An item that runs out of memory, on any thread, makes the job throw
    /// <see cref="OutOfMemoryException"/> (the C ABI's NSM_ERR_OUT_OF_MEMORY, not an internal
    /// error), and the pool is given back.</summary>
    [Fact]
    public unsafe void AnItemOutOfMemoryFailsTheJobWithOutOfMemory()
    {
        Assert.Throws<OutOfMemoryException>(() => WorkerPool.TryRun(&OutOfMemoryAtItem7, null, 64, 2, 0, out _));
        Assert.True(WorkerPool.TryRun(&Nothing, null, 2, 2, 0, out _), "the pool is still held after the failed job");
        WorkerPool.Release();

        static void OutOfMemoryAtItem7(void* state, long item, double* result)
        {
            if (item == 7)
            {
                throw new OutOfMemoryException("item 7");
            }
        }

        static void Nothing(void* state, long item, double* result)
        {
        }
    }

    /// <summary>Every operation on a long row split over the pool's threads (each pass of its chunks a
    /// job) gives the pool back: a later job can take it. A job that kept it would leave every later
    /// call on one thread, with the same bits, which no comparison of results would notice.</summary>
    [Fact]
    public unsafe void EveryOperationGivesThePoolBack()
    {
        int before = SoftmaxPrimitives.ThreadCount;
        try
        {
            SoftmaxPrimitives.ThreadCount = 2;
            Run<float>(1, 70_001);
            Assert.True(WorkerPool.TryRun(&Nothing, null, 2, 2, 0, out _), "the pool is still held after the calls");
            WorkerPool.Release();
        }
        finally
        {
            SoftmaxPrimitives.ThreadCount = before;
        }

        static void Nothing(void* state, long item, double* result)
        {
        }
    }

    [Fact]
    public void BlocksDependOnlyOnTheRowLength()
    {
        Assert.Equal(Dispatch.MaxRowsPerBlock, Dispatch.RowsPerBlock(10));
        Assert.Equal(16, Dispatch.RowsPerBlock(1000));
        Assert.Equal(1, Dispatch.RowsPerBlock(32_000));
        // Work too small for a second thread stays on the caller's: one 1 × 10 row never wakes a worker.
        Assert.Equal(1, Dispatch.ThreadsFor(1, 10, 1));
    }

    private static void Check<T>(int rows, int cols)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int before = SoftmaxPrimitives.ThreadCount;
        try
        {
            Results<T>? first = null;
            foreach (int threads in new[] { 1, 2, 7 })
            {
                SoftmaxPrimitives.ThreadCount = threads;
                Results<T> results = Run<T>(rows, cols);
                if (first is null)
                {
                    first = results;
                    continue;
                }
                foreach ((string name, T[] values) in results.Outputs)
                {
                    T[] reference = first.Outputs.Single(o => o.Name == name).Values;
                    int differ = Enumerable.Range(0, values.Length).FirstOrDefault(i => !Same(values[i], reference[i]), -1);
                    Assert.True(differ < 0,
                        $"{name} {TestData.Name<T>()} {rows}x{cols}: at {threads} threads element {differ} is " +
                        $"{(differ < 0 ? default : values[differ])}, at 1 thread {(differ < 0 ? default : reference[differ])}");
                }
            }
        }
        finally
        {
            SoftmaxPrimitives.ThreadCount = before;
        }
    }

    private static bool Same<T>(T a, T b)
        where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
        double.CreateTruncating(a).Equals(double.CreateTruncating(b)) && T.IsNegative(a) == T.IsNegative(b);

    private sealed record Results<T>(List<(string Name, T[] Values)> Outputs)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>;

    private static Results<T> Run<T>(int rows, int cols)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        Matrix<T> logits = TestData.Uniform<T>(991_000 + cols, rows, cols, cols, -30, 30);
        Matrix<T> upstream = TestData.Uniform<T>(992_000 + cols, rows, cols, cols, -1, 1);
        Matrix<T> soft = TestData.Probabilities<T>(993_000 + cols, rows, cols, cols);
        long[] labels = TestData.Labels(994_000 + cols, rows, cols, ignoreIndex: -100);
        T[] weight = TestData.Vector<T>(995_000 + cols, cols, 0.5, 2);
        var outputs = new List<(string, T[])>();

        var probabilities = new Matrix<T>(rows, cols, cols);
        Ops.Softmax(Width.PublicApi, logits, probabilities);
        outputs.Add(("softmax", probabilities.Data));
        var logProbabilities = new Matrix<T>(rows, cols, cols);
        Ops.LogSoftmax(Width.PublicApi, logits, logProbabilities);
        outputs.Add(("log_softmax", logProbabilities.Data));
        var dz = new Matrix<T>(rows, cols, cols);
        Ops.SoftmaxBackward(Width.PublicApi, upstream, probabilities, dz);
        outputs.Add(("softmax_backward", dz.Data));
        var dzLog = new Matrix<T>(rows, cols, cols);
        Ops.LogSoftmaxBackward(Width.PublicApi, upstream, logProbabilities, dzLog);
        outputs.Add(("log_softmax_backward", dzLog.Data));
        foreach (Reduction reduction in Enum.GetValues<Reduction>())
        {
            var options = new CrossEntropyOptions { Reduction = reduction, LabelSmoothing = 0.05 };
            T[] loss = new T[reduction == Reduction.None ? rows : 1];
            var grad = new Matrix<T>(rows, cols, cols);
            Ops.CrossEntropy(Width.PublicApi, logits, labels, weight, options, loss, grad);
            outputs.Add(($"cross_entropy {reduction} loss", loss));
            outputs.Add(($"cross_entropy {reduction} grad", grad.Data));
            // A long row goes by LongRow's chunk statistics either way; with smoothing they also fold
            // the smoothing term, and the gradient's weights are subtracted chunk by chunk.
            T[] unsmoothedLoss = new T[reduction == Reduction.None ? rows : 1];
            var unsmoothedGrad = new Matrix<T>(rows, cols, cols);
            Ops.CrossEntropy(Width.PublicApi, logits, labels, weight, options with { LabelSmoothing = 0 }, unsmoothedLoss, unsmoothedGrad);
            outputs.Add(($"cross_entropy {reduction} no smoothing loss", unsmoothedLoss));
            outputs.Add(($"cross_entropy {reduction} no smoothing grad", unsmoothedGrad.Data));
            T[] softLoss = new T[reduction == Reduction.None ? rows : 1];
            var softGrad = new Matrix<T>(rows, cols, cols);
            Ops.SoftCrossEntropy(Width.PublicApi, logits, soft, weight, options, softLoss, softGrad);
            outputs.Add(($"soft cross_entropy {reduction} loss", softLoss));
            outputs.Add(($"soft cross_entropy {reduction} grad", softGrad.Data));
        }
        return new Results<T>(outputs);
    }
}
