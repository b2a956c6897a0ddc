using NativeSoftmax.Kernels;

namespace NativeSoftmax.Tests;

/// <summary>
/// Long 16-bit softmax and log_softmax rows, which are widened and narrowed chunk by chunk inside
/// <see cref="LongRow{TVec, T}"/>'s passes: two strided rows, in place and not, on one thread and on
/// two, for a row with a chunk of −∞ only (3 chunks) and a row of more than
/// <see cref="LongRow{TVec, T}.MaxChunksKeepingExps"/> chunks (whose softmax computes the exponentials
/// again in the output pass), against float64 references as <see cref="HalfOperationTests"/>.
/// </summary>
[Collection(nameof(ThreadCountCollection))]
public unsafe class HalfLongRowTests
{
    private const int Chunk = (int)LongRow<NativeSoftmax.Simd.Vec256<float>, float>.ChunkLength;

    public static TheoryData<HalfType, int> Cases()
    {
        var data = new TheoryData<HalfType, int>();
        foreach (HalfType type in new[] { HalfType.BFloat16, HalfType.Float16 })
        {
            data.Add(type, 3 * Chunk + 7);
            data.Add(type, ((int)LongRow<NativeSoftmax.Simd.Vec256<float>, float>.MaxChunksKeepingExps + 1) * Chunk + 3);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void LongRowsMatchTheReference(HalfType type, int cols)
    {
        int saved = SoftmaxPrimitives.ThreadCount;
        try
        {
            foreach (int threads in new[] { 1, 2 })
            {
                SoftmaxPrimitives.ThreadCount = threads;
                foreach (bool isLog in new[] { false, true })
                {
                    foreach (bool inPlace in new[] { false, true })
                    {
                        Check(type, cols, isLog, inPlace, $"{(isLog ? "log_softmax" : "softmax")} {type} cols={cols} threads={threads}{(inPlace ? " in place" : "")}");
                    }
                }
            }
        }
        finally
        {
            SoftmaxPrimitives.ThreadCount = saved;
        }
    }

    private static void Check(HalfType type, int cols, bool isLog, bool inPlace, string context)
    {
        int rows = 2, ld = cols + 5;
        var random = new Random(cols + (isLog ? 1 : 0));
        ushort[] logits = HalfOperationTests.HalfMatrix(type, rows, cols, ld, (_, c) =>
            c >= Chunk && c < 2 * Chunk ? double.NegativeInfinity : random.NextDouble() * 16 - 8);
        double[][] input = [.. Enumerable.Range(0, rows).Select(r => HalfOperationTests.Row(type, logits, r, cols, ld))];
        ushort[] output = inPlace ? logits : new ushort[logits.Length];
        if (!inPlace)
        {
            Array.Fill(output, HalfOperationTests.Padding);
        }
        fixed (ushort* z = logits)
        fixed (ushort* o = output)
        {
            if (isLog)
            {
                HalfOperationTests.Forward<LogSoftmaxRow>(Width.V256, type, z, ld, o, ld, rows, cols);
            }
            else
            {
                HalfOperationTests.Forward<SoftmaxRow>(Width.V256, type, z, ld, o, ld, rows, cols);
            }
        }
        for (int r = 0; r < rows; r++)
        {
            double[] expected = isLog ? Reference.LogSoftmax(input[r]) : Reference.Softmax(input[r]);
            for (int c = 0; c < cols; c++)
            {
                double e = expected[c];
                string? error = HalfOperationTests.HalfError(type, output[r * ld + c], e, isLog ? 2e-6 * (1 + Math.Abs(e)) : 1e-6 * Math.Abs(e));
                Assert.True(error == null, $"{context} [{r},{c}]: {error}");
            }
        }
        HalfOperationTests.AssertPadding(output, rows, cols, ld, context);
    }
}
