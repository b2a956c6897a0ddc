using NativeSoftmax.Kernels;
using NativeSoftmax.Operations;

namespace NativeSoftmax.Tests;

/// <summary>
/// Shapes too large to address are rejected before anything is touched, whatever the row count
/// (the C exports validate through the same operation structs; a crash here would kill the host).
/// </summary>
public unsafe class ShapeLimitTests
{
    [Theory]
    [InlineData(1L, long.MaxValue, long.MaxValue)]
    [InlineData(1L, long.MaxValue / 8, long.MaxValue / 8)]
    [InlineData(1L, (1L << 57) / 4 + 1, (1L << 57) / 4 + 1)]
    [InlineData(long.MaxValue, 2L, 2L)]
    [InlineData(3L, 4L, long.MaxValue / 2)]
    public void TooLargeToAddressIsAnInvalidShape(long rows, long cols, long ld)
    {
        float input = 1, output = 2;
        var softmax = new RowToRowOperation<SoftmaxRow, float>(rows, cols, &input, ld, &output, ld);
        Assert.False(softmax.Prepare(out _, out Failure? failure), $"softmax {rows} x {cols}, ld {ld} was accepted");
        Assert.True(failure!.Status == Status.InvalidShape, $"softmax {rows} x {cols}, ld {ld}: {failure.Status}: {failure.Message}");

        long label = 0;
        var crossEntropy = new HardLabelCrossEntropyOperation<float, long, LossOptions>(rows, cols, &input, ld, &label, &input,
            CrossEntropyOptions.Default.ToLossOptions(), &output, null, 0);
        Assert.False(crossEntropy.Prepare(out _, out failure), $"cross_entropy {rows} x {cols}, ld {ld} was accepted");
        Assert.True(failure!.Status == Status.InvalidShape, $"cross_entropy {rows} x {cols}: {failure.Status}: {failure.Message}");
        Assert.True(input == 1 && output == 2, "an output was written");
    }

    [Fact]
    public void TheLargestAddressableRowIsAccepted()
    {
        float input = 1, output = 2;
        long cols = (1L << 57) / sizeof(float);
        var softmax = new RowToRowOperation<SoftmaxRow, float>(1, cols, &input, cols, &output, cols);
        // Accepted by the shape check; it then fails only because the two one-element buffers,
        // seen as 2^57-byte rows, overlap.
        Assert.False(softmax.Prepare(out _, out Failure? failure));
        Assert.True(failure!.Status == Status.Overlap, $"{failure.Status}: {failure.Message}");
    }
}
