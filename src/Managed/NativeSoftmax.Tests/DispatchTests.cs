using System.Numerics;
using System.Runtime.Intrinsics;
using NativeSoftmax.Operations;
using Xunit.Abstractions;

namespace NativeSoftmax.Tests;

/// <summary>The public API runs the widest accelerated width that fits in a row.</summary>
public class DispatchTests(ITestOutputHelper output)
{
    [Fact]
    public void InstructionSetNamesTheWidestAcceleratedWidth()
    {
        string isa = SoftmaxPrimitives.InstructionSet;
        output.WriteLine($"InstructionSet = {isa}; Vector512/256/128 accelerated: "
            + $"{Vector512.IsHardwareAccelerated}/{Vector256.IsHardwareAccelerated}/{Vector128.IsHardwareAccelerated}");
        Assert.Contains(isa, new[] { "avx512", "avx2", "sse4.2", "neon", "scalar" });
        Assert.Equal(Vector512.IsHardwareAccelerated, isa == "avx512");
    }

    [Theory, MemberData(nameof(Cases.Types), MemberType = typeof(Cases))]
    public void PublicApiMatchesTheWidthItShouldPickBitForBit(string dtype)
    {
        int count = dtype == "float32" ? Check<float>() : Check<double>();
        Assert.Equal(Cases.Lengths.Length, count);
    }

    /// <summary>
    /// The loss total is the sum of the totals of fixed blocks of <see cref="Dispatch.RowsPerBlock"/>
    /// rows (64 at 13 classes), added in block order (so that running blocks on threads later changes no bit): a call
    /// over 200 rows gives exactly the float64 sum, in order, of the calls over each block.
    /// </summary>
    /// <remarks>In float64: a float32 loss is rounded when stored, which hides the total's bits.</remarks>
    [Theory, MemberData(nameof(Cases.EveryWidth), MemberType = typeof(Cases))]
    public void LossTotalsAreAddedByFixedBlocksOfRows(Width width)
    {
        const int rows = 200, cols = 13;
        int rowsPerBlock = (int)Dispatch.RowsPerBlock(cols);
        Assert.Equal(64, rowsPerBlock);
        Matrix<double> logits = TestData.Uniform<double>(960_000, rows, cols, cols, -30, 30);
        long[] labels = TestData.Labels(960_001, rows, cols);
        var options = new CrossEntropyOptions { Reduction = Reduction.Sum };
        double[] whole = [0];
        Ops.CrossEntropy(width, logits, labels, null, options, whole, null);
        double blocks = 0;
        for (int first = 0; first < rows; first += rowsPerBlock)
        {
            int count = Math.Min(rows - first, rowsPerBlock);
            var block = new Matrix<double>(count, cols, cols).Fill((r, c) => logits[first + r, c]);
            double[] total = [0];
            Ops.CrossEntropy(width, block, labels[first..(first + count)], null, options, total, null);
            blocks += total[0];
        }
        Assert.True(BitConverter.DoubleToInt64Bits(whole[0]) == BitConverter.DoubleToInt64Bits(blocks),
            $"width={width}: the whole call's sum {whole[0]:R} is not the blocks' {blocks:R}");
    }

    private static Width Expected<T>(int cols)
        where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
        Vector512.IsHardwareAccelerated && cols >= Vector512<T>.Count ? Width.V512
        : Vector256.IsHardwareAccelerated && cols >= Vector256<T>.Count ? Width.V256
        : Vector128.IsHardwareAccelerated && cols >= Vector128<T>.Count ? Width.V128
        : Width.Scalar;

    private static int Check<T>()
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int count = 0;
        foreach (int cols in Cases.Lengths)
        {
            int seed = 950_000 + cols;
            Width width = Expected<T>(cols);
            Matrix<T> logits = TestData.Uniform<T>(seed, 2, cols, cols, -50, 50);
            var viaApi = new Matrix<T>(2, cols, cols);
            var viaWidth = new Matrix<T>(2, cols, cols);
            Ops.Softmax(Width.PublicApi, logits, viaApi);
            Ops.Softmax(width, logits, viaWidth);
            Assert.True(viaApi.Data.SequenceEqual(viaWidth.Data),
                $"softmax dtype={TestData.Name<T>()} cols={cols} seed={seed}: the public API differs from {width}, the width it should run");
            count++;
        }
        return count;
    }
}
