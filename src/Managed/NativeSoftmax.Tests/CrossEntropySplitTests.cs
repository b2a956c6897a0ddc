using System.Numerics;
using NativeSoftmax.Operations;

namespace NativeSoftmax.Tests;

/// <summary>
/// The vocabulary-split cross-entropy (SoftmaxPrimitives.CrossEntropyPartial / CrossEntropyMerge /
/// CrossEntropyFinish; docs/derivation.md §7) at every width: random splits of the columns (empty
/// and single-column shards, boundaries inside and outside vectors, the label in any shard) merged
/// in random tree shapes, against the float64 reference (<see cref="Reference"/>) and the unsplit
/// CrossEntropy; every shard's finish gives the same loss bits, and the same split and order give
/// the same bits at 1, 2 and 7 threads. A dominant class split in two keeps its tiny loss.
/// </summary>
[Collection(nameof(ThreadCountCollection))]
public class CrossEntropySplitTests
{
    private sealed record Problem<T>(int Rows, int Vocab, T[] Logits, long[]? Labels, T[]? Target, T[]? Weight, T[]? GradOutput,
        CrossEntropyOptions Options)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>;

    private static T[] Columns<T>(T[] dense, int rows, int stride, int first, int cols, int ld)
    {
        var shard = new T[Math.Max(0, (rows - 1) * ld + cols)];
        for (int r = 0; r < rows && cols > 0; r++)
        {
            Array.Copy(dense, r * stride + first, shard, r * ld, cols);
        }
        return shard;
    }

    /// <summary>Partial statistics of columns [first, first + cols) at the given width.</summary>
    private static unsafe CrossEntropyStats[] Partial<T>(Width width, Problem<T> p, int first, int cols, int ld)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        T[] z = Columns(p.Logits, p.Rows, p.Vocab, first, cols, ld);
        T[]? target = p.Target == null ? null : Columns(p.Target, p.Rows, p.Vocab, first, cols, ld);
        T[]? weight = p.Weight?[first..(first + cols)];
        var stats = new CrossEntropyStats[p.Rows];
        if (width == Width.PublicApi)
        {
            if (p.Labels != null)
            {
                SoftmaxPrimitives.CrossEntropyPartial<T>(p.Rows, cols, first, p.Vocab, z, ld, p.Labels, weight, stats, p.Options);
            }
            else
            {
                SoftmaxPrimitives.CrossEntropyPartial<T>(p.Rows, cols, first, p.Vocab, z, ld, target, ld, weight, stats, p.Options);
            }
            return stats;
        }
        fixed (T* pz = z)
        fixed (long* pl = p.Labels)
        fixed (T* pt = target)
        fixed (T* pw = weight)
        fixed (CrossEntropyStats* ps = stats)
        {
            var shard = new VocabularyShard<T>(p.Rows, cols, first, p.Vocab, pz, ld, pl, pt, ld, pw) { SoftTargets = p.Labels == null };
            Ops.RunAt<CrossEntropyPartialOperation<T, LossOptions>, T>(width, new(shard, p.Options.ToLossOptions(), ps));
        }
        return stats;
    }

    /// <summary>The loss and the shard's gradient (dense, ld = cols) from merged statistics.</summary>
    private static unsafe (T[] Loss, T[] Grad) Finish<T>(Width width, Problem<T> p, CrossEntropyStats[] merged, int first, int cols, int ld)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        T[] z = Columns(p.Logits, p.Rows, p.Vocab, first, cols, ld);
        T[]? target = p.Target == null ? null : Columns(p.Target, p.Rows, p.Vocab, first, cols, ld);
        T[]? weight = p.Weight?[first..(first + cols)];
        var loss = new T[p.Options.Reduction == Reduction.None ? p.Rows : 1];
        var grad = new T[Math.Max(0, (p.Rows - 1) * ld + cols)];
        if (width == Width.PublicApi)
        {
            if (p.Labels != null)
            {
                SoftmaxPrimitives.CrossEntropyFinish<T>(p.Rows, cols, first, p.Vocab, z, ld, p.Labels, weight, merged, p.GradOutput,
                    loss, grad, ld, p.Options);
            }
            else
            {
                SoftmaxPrimitives.CrossEntropyFinish<T>(p.Rows, cols, first, p.Vocab, z, ld, target, ld, weight, merged, p.GradOutput,
                    loss, grad, ld, p.Options);
            }
        }
        else
        {
            fixed (T* pz = z)
            fixed (long* pl = p.Labels)
            fixed (T* pt = target)
            fixed (T* pw = weight)
            fixed (CrossEntropyStats* ps = merged)
            fixed (T* pu = p.GradOutput)
            fixed (T* pLoss = loss)
            fixed (T* pg = grad)
            {
                var shard = new VocabularyShard<T>(p.Rows, cols, first, p.Vocab, pz, ld, pl, pt, ld, pw) { SoftTargets = p.Labels == null };
                Ops.RunAt<CrossEntropyFinishOperation<T, LossOptions>, T>(width,
                    new(shard, ps, p.Options.ToLossOptions(pu), pLoss, cols > 0 ? pg : null, ld));
            }
        }
        return (loss, Columns(grad, p.Rows, ld, 0, cols, cols));
    }

    /// <summary>Merges neighbours in the order given (or a random one, recorded) until one is left.</summary>
    private static CrossEntropyStats[] MergeTree(List<CrossEntropyStats[]> parts, Random? random, List<int> order)
    {
        parts = [.. parts];
        int step = 0;
        while (parts.Count > 1)
        {
            int i = random != null ? random.Next(parts.Count - 1) : order[step++];
            if (random != null)
            {
                order.Add(i);
            }
            var merged = new CrossEntropyStats[parts[i].Length];
            SoftmaxPrimitives.CrossEntropyMerge(parts[i], parts[i + 1], merged);
            parts[i] = merged;
            parts.RemoveAt(i + 1);
        }
        return parts[0];
    }

    private static (T[] Loss, T[][] ShardLosses, double[][] Grad) Run<T>(Width width, Problem<T> p, int[] bounds, Random? random, List<int> order)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var parts = new List<CrossEntropyStats[]>();
        for (int k = 0; k + 1 < bounds.Length; k++)
        {
            parts.Add(Partial(width, p, bounds[k], bounds[k + 1] - bounds[k], bounds[k + 1] - bounds[k] + k % 3));
        }
        CrossEntropyStats[] merged = MergeTree(parts, random, order);
        var grad = new double[p.Rows][];
        for (int r = 0; r < p.Rows; r++)
        {
            grad[r] = new double[p.Vocab];
        }
        var losses = new T[bounds.Length - 1][];
        for (int k = 0; k + 1 < bounds.Length; k++)
        {
            int cols = bounds[k + 1] - bounds[k];
            (losses[k], T[] g) = Finish(width, p, merged, bounds[k], cols, cols + 1);
            for (int r = 0; r < p.Rows; r++)
            {
                for (int c = 0; c < cols; c++)
                {
                    grad[r][bounds[k] + c] = double.CreateTruncating(g[r * cols + c]);
                }
            }
        }
        return (losses[0], losses, grad);
    }

    public static TheoryData<Width, string, bool> WidthsTypesAndTargets()
    {
        var data = new TheoryData<Width, string, bool>();
        foreach (Width width in Cases.AllWidths)
        {
            foreach (string dtype in Cases.Dtypes)
            {
                data.Add(width, dtype, false);
                data.Add(width, dtype, true);
            }
        }
        return data;
    }

    [Theory, MemberData(nameof(WidthsTypesAndTargets))]
    public void RandomSplitsMatchTheReferenceAndTheUnsplitCall(Width width, string dtype, bool soft)
    {
        if (dtype == "float32")
        {
            RandomSplits<float>(width, soft);
        }
        else
        {
            RandomSplits<double>(width, soft);
        }
    }

    private static void RandomSplits<T>(Width width, bool soft)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        double unit = Expect.IsFloat<T>() ? 1e-6 : 1e-12;
        var random = new Random(soft ? 11 : 12);
        // 12293: three chunks and a remainder of a long row (LongRow), in one shard or a random few.
        foreach (int vocab in new[] { 1, 2, 7, 17, 40, 133, 3 * 4096 + 5 })
        {
            foreach (Reduction reduction in Enum.GetValues<Reduction>())
            {
                foreach (double eps in new[] { 0.0, 0.2 })
                {
                    foreach (bool weighted in new[] { false, true })
                    {
                        const int rows = 5;
                        double[][] z = Enumerable.Range(0, rows).Select(_ => Enumerable.Range(0, vocab).Select(_ => random.NextDouble() * 12 - 6).ToArray()).ToArray();
                        z[1][vocab / 2] = Expect.IsFloat<T>() ? 20 : 40; // a dominant class
                        z = z.Select(row => row.Select(v => double.CreateTruncating(T.CreateTruncating(v))).ToArray()).ToArray();
                        double[][] pTarget = Enumerable.Range(0, rows).Select(r => Enumerable.Range(0, vocab)
                            .Select(_ => r == 2 || random.Next(3) == 0 ? 0.0 : double.CreateTruncating(T.CreateTruncating(random.NextDouble()))).ToArray()).ToArray();
                        long[] labels = Enumerable.Range(0, rows).Select(r => r == 3 ? -100L : random.Next(vocab)).ToArray();
                        labels[1] = vocab / 2;
                        double[]? weight = weighted ? Enumerable.Range(0, vocab).Select(_ => double.CreateTruncating(T.CreateTruncating(0.25 + random.NextDouble() * 1.75))).ToArray() : null;
                        double[]? gradOutput = reduction == Reduction.None ? Enumerable.Range(0, rows).Select(_ => double.CreateTruncating(T.CreateTruncating(random.NextDouble() * 4 - 2))).ToArray() : null;
                        var options = new CrossEntropyOptions { Reduction = reduction, LabelSmoothing = eps };
                        var p = new Problem<T>(rows, vocab, [.. z.SelectMany(row => row).Select(T.CreateTruncating)],
                            soft ? null : labels, soft ? [.. pTarget.SelectMany(row => row).Select(T.CreateTruncating)] : null,
                            weight?.Select(T.CreateTruncating).ToArray(), gradOutput?.Select(T.CreateTruncating).ToArray(), options);
                        Reference.LossResult expected = soft ? Reference.SoftCrossEntropy(z, pTarget, weight, options)
                            : Reference.HardCrossEntropy(z, labels, weight, options);

                        var unsplitLoss = new T[reduction == Reduction.None ? rows : 1];
                        var unsplitGrad = new T[rows * vocab];
                        if (soft)
                        {
                            SoftmaxPrimitives.CrossEntropy<T>(rows, vocab, p.Logits, vocab, p.Target, vocab, p.Weight, p.GradOutput, unsplitLoss, unsplitGrad, vocab, options);
                        }
                        else
                        {
                            SoftmaxPrimitives.CrossEntropy<T>(rows, vocab, p.Logits, vocab, labels, p.Weight, p.GradOutput, unsplitLoss, unsplitGrad, vocab, options);
                        }
                        double[] rowTol = expected.RowLossScale.Select((s, r) => 2 * unit * (s + expected.TargetAbsMass[r])).ToArray(); // the unsplit call's bound
                        double reducedTol = reduction == Reduction.Sum ? rowTol.Sum() : rowTol.Sum() / Math.Abs(expected.Divisor);

                        foreach (int shards in new[] { 1, 2, 3, 5 })
                        {
                            int[] inner = [.. Enumerable.Range(0, shards - 1).Select(_ => random.Next(vocab + 1)).Order()];
                            int[] bounds = [0, .. inner, vocab];
                            string context = $"width={width} dtype={TestData.Name<T>()} {(soft ? "soft" : "hard")} vocab={vocab} {reduction} eps={eps} weighted={weighted} split [{string.Join(", ", bounds)}]";
                            var order = new List<int>();
                            (T[] loss, T[][] shardLosses, double[][] grad) = Run(width, p, bounds, random, order);
                            for (int i = 0; i < loss.Length; i++)
                            {
                                double got = double.CreateTruncating(loss[i]);
                                double exact = reduction == Reduction.None ? expected.RowLosses[i] : expected.Reduced;
                                double tol = reduction == Reduction.None ? rowTol[i] : reducedTol;
                                Expect.Close(exact, got, tol, context + " loss vs reference", i);
                                Expect.Close(double.CreateTruncating(unsplitLoss[i]), got, 2 * tol, context + " loss vs unsplit", i);
                                foreach (T[] other in shardLosses)
                                {
                                    Assert.True(BitConverter.DoubleToInt64Bits(double.CreateTruncating(other[i])) == BitConverter.DoubleToInt64Bits(got),
                                        $"{context}: the shards' losses differ");
                                }
                            }
                            string vsReference = context + " grad vs reference", vsUnsplit = context + " grad vs unsplit";
                            for (int r = 0; r < rows; r++)
                            {
                                double s = Math.Abs(expected.Scale * (gradOutput?[r] ?? 1.0));
                                double tol = unit * s * expected.TargetAbsMass[r] + (Expect.IsFloat<T>() ? 1e-37 : 1e-300);
                                for (int j = 0; j < vocab; j++)
                                {
                                    double exact = expected.Grad[r][j] * (gradOutput?[r] ?? 1.0);
                                    Expect.Close(exact, grad[r][j], tol, vsReference, r, j);
                                    Expect.Close(double.CreateTruncating(unsplitGrad[r * vocab + j]), grad[r][j], 2 * tol, vsUnsplit, r, j);
                                }
                            }
                            // The same split merged in the same order: the same bits.
                            (T[] again, _, double[][] gradAgain) = Run(width, p, bounds, null, order);
                            Assert.Equal(loss, again);
                            Assert.True(grad.Zip(gradAgain).All(pair => pair.First.SequenceEqual(pair.Second)), $"{context}: other gradient bits");
                        }
                    }
                }
            }
        }
    }

    [Fact]
    public void TheSameSplitAndOrderGiveTheSameBitsAtOneTwoAndSevenThreads()
    {
        var random = new Random(3);
        const int rows = 300, vocab = 2003;
        float[] z = [.. Enumerable.Range(0, rows * vocab).Select(_ => (float)(random.NextDouble() * 16 - 8))];
        long[] labels = [.. Enumerable.Range(0, rows).Select(_ => (long)random.Next(vocab))];
        var p = new Problem<float>(rows, vocab, z, labels, null, null, null, new CrossEntropyOptions { LabelSmoothing = 0.1 });
        int[] bounds = [0, 700, 701, 701, vocab];
        int before = SoftmaxPrimitives.ThreadCount;
        var results = new List<(float[] Loss, double[][] Grad)>();
        try
        {
            foreach (int threads in new[] { 1, 2, 7 })
            {
                SoftmaxPrimitives.ThreadCount = threads;
                (float[] loss, _, double[][] grad) = Run(Width.PublicApi, p, bounds, null, [2, 1, 0]);
                results.Add((loss, grad));
            }
        }
        finally
        {
            SoftmaxPrimitives.ThreadCount = before;
        }
        foreach ((float[] loss, double[][] grad) in results.Skip(1))
        {
            Assert.Equal(results[0].Loss, loss);
            Assert.True(results[0].Grad.Zip(grad).All(pair => pair.First.SequenceEqual(pair.Second)));
        }
    }

    [Fact]
    public void ADominantClassSplitInTwoKeepsItsTinyLoss()
    {
        float[] z = [20f, 0f];
        long[] label = [0];
        var a = new CrossEntropyStats[1];
        var b = new CrossEntropyStats[1];
        SoftmaxPrimitives.CrossEntropyPartial<float>(1, 1, 0, 2, z.AsSpan(0, 1), 1, label, default, a);
        SoftmaxPrimitives.CrossEntropyPartial<float>(1, 1, 1, 2, z.AsSpan(1, 1), 1, label, default, b);
        var merged = new CrossEntropyStats[1];
        SoftmaxPrimitives.CrossEntropyMerge(b, a, merged);
        var loss = new float[1];
        var grad = new float[1];
        SoftmaxPrimitives.CrossEntropyFinish<float>(1, 1, 0, 2, z.AsSpan(0, 1), 1, label, default, merged, default, loss, grad, 1);
        double exact = Math.Log(1 + Math.Exp(-20.0));
        double ulp = Math.ScaleB(1.0, Math.ILogB(exact) - 23);
        Assert.True(Math.Abs(loss[0] - exact) <= 4 * ulp, $"loss {loss[0]:R}, exact {exact:R}");
        Assert.True(Math.Abs(grad[0] + exact) <= 4 * ulp, $"grad {grad[0]:R}, exact {-exact:R}");
    }

    [Fact]
    public void AnEmptyShardGivesTheIdentityWhichMergesExactly()
    {
        double[] z = [0.5, -1.25, 3.0, 3.0, -7.0];
        long[] label = [2];
        var options = new CrossEntropyOptions { LabelSmoothing = 0.3 };
        var s = new CrossEntropyStats[1];
        var empty = new CrossEntropyStats[1];
        SoftmaxPrimitives.CrossEntropyPartial<double>(1, 5, 4, 9, z, 5, label, default, s, options);
        SoftmaxPrimitives.CrossEntropyPartial<double>(1, 0, 9, 9, default, 0, label, default, empty, options);
        Assert.True(empty[0].IsIdentity);
        // Two logits at the maximum: a total of 2 or more may come unsplit (CountAtMax's doc).
        double total = 2 + Math.Exp(0.5 - 3.0) + Math.Exp(-1.25 - 3.0) + Math.Exp(-7.0 - 3.0);
        Assert.True(s[0].CountAtMax >= 1);
        Assert.Equal(total, s[0].CountAtMax + s[0].SumBelowMax, 1e-15 * total);
        var merged = new CrossEntropyStats[1];
        SoftmaxPrimitives.CrossEntropyMerge(s, empty, merged);
        Assert.Equal(s[0], merged[0]);
        SoftmaxPrimitives.CrossEntropyMerge(empty, s, merged);
        Assert.Equal(s[0], merged[0]);
        SoftmaxPrimitives.CrossEntropyMerge(merged, empty, merged); // in place
        Assert.Equal(s[0], merged[0]);
    }

    [Theory]
    [InlineData(7)]
    [InlineData(1001)]
    public void TheSplitFunctionsAllocateNothingPerCall(int cols)
    {
        const int rows = 4;
        var random = new Random(cols);
        float[] z = [.. Enumerable.Range(0, rows * cols).Select(_ => (float)(random.NextDouble() * 20 - 10))];
        float[] soft = [.. Enumerable.Range(0, rows * cols).Select(_ => (float)random.NextDouble())];
        float[] g = new float[z.Length], loss = new float[rows], upstream = [1, -2, 0.5f, 3];
        long[] labels = [.. Enumerable.Range(0, rows).Select(r => (long)(r * 3 % cols))];
        var a = new CrossEntropyStats[rows];
        var b = new CrossEntropyStats[rows];
        var none = new CrossEntropyOptions { Reduction = Reduction.None, LabelSmoothing = 0.1 };

        void CallEveryFunction()
        {
            SoftmaxPrimitives.CrossEntropyPartial<float>(rows, cols, 3, cols + 5, z, cols, labels, default, a, none);
            SoftmaxPrimitives.CrossEntropyPartial<float>(rows, 0, 0, cols + 5, default, 0, labels, default, b, none);
            SoftmaxPrimitives.CrossEntropyMerge(a, b, a);
            SoftmaxPrimitives.CrossEntropyFinish<float>(rows, cols, 3, cols + 5, z, cols, labels, default, a, upstream, loss, g, cols, none);
            SoftmaxPrimitives.CrossEntropyPartial<float>(rows, cols, 0, cols, z, cols, soft, cols, default, b, none);
            SoftmaxPrimitives.CrossEntropyFinish<float>(rows, cols, 0, cols, z, cols, soft, cols, default, b, default, loss, g, cols, none);
        }

        CallEveryFunction(); // JIT and static initialisation happen here
        long allocated = AllocationTests.FewestBytesOfABatch(CallEveryFunction);
        Assert.True(allocated == 0, $"cols={cols}: every batch of 10 rounds allocated, the fewest {allocated} bytes");
        Assert.True(float.IsFinite(loss[0]) && g.Any(v => v != 0), $"cols={cols}: the functions did not run");
    }

    [Fact]
    public void BadInputThrowsAndWritesNothing()
    {
        float[] z = [1, 2, 3, 4, 5, 6];
        var stats = new CrossEntropyStats[2];
        stats[0].Max = 7;
        var error = Assert.Throws<ArgumentOutOfRangeException>(() =>
            SoftmaxPrimitives.CrossEntropyPartial<float>(2, 3, 0, 9, z, 3, [0L, 9L], default, stats));
        Assert.Contains("vocab", error.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            SoftmaxPrimitives.CrossEntropyPartial<float>(2, 3, 7, 9, z, 3, [0L, 1L], default, stats));
        Assert.Equal(7, stats[0].Max);
        SoftmaxPrimitives.CrossEntropyPartial<float>(2, 3, 0, 9, z, 3, [0L, 1L], default, stats);
        var grad = new float[6];
        Array.Fill(grad, 7f);
        Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.CrossEntropyFinish<float>(2, 3, 0, 9, z, 3, [0L, 1L], default, stats,
            default, default, grad, 3, new CrossEntropyOptions { LabelSmoothing = 2 }));
        Assert.All(grad, g => Assert.Equal(7f, g));
        var three = new CrossEntropyStats[3];
        Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.CrossEntropyMerge(three.AsSpan(0, 2), stats, three.AsSpan(1, 2)));
        Assert.Throws<NotSupportedException>(() =>
            SoftmaxPrimitives.CrossEntropyPartial<Half>(1, 1, 0, 1, [Half.One], 1, [0L], default, stats.AsSpan(0, 1)));
    }
}
