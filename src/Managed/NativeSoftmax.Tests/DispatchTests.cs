using System.Numerics;
using System.Runtime.Intrinsics;
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
