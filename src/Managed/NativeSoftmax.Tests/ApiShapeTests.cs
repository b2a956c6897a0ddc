namespace NativeSoftmax.Tests;

/// <summary>The Span API's argument rules as a .NET (TensorPrimitives) user meets them.</summary>
public class ApiShapeTests
{
    [Fact]
    public void SingleRowOverloadsAcceptALongerDestinationAndWriteOnlyTheRow()
    {
        float[] z = [1, 2, 3];
        float[] o = [9, 9, 9, 9];
        SoftmaxPrimitives.Softmax<float>(z, o);
        double den = Math.Exp(-2) + Math.Exp(-1) + 1;
        Assert.True(Math.Abs(o[2] - 1 / den) < 1e-7, $"o[2] = {o[2]}, expected {1 / den}");
        Assert.True(o[3] == 9, $"o[3] = {o[3]}: the element past the row was written");
        float[] y = [9, 9, 9, 9];
        SoftmaxPrimitives.LogSoftmax<float>(z, y);
        Assert.True(Math.Abs(y[2] + Math.Log(den)) < 1e-6 && y[3] == 9, $"log_softmax: {string.Join(", ", y)}");
    }

    [Fact]
    public void SingleRowOverloadsRejectAnEmptyRowOrAShortDestination()
    {
        var empty = Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.Softmax<float>([], new float[1]));
        Assert.Equal("logits", empty.ParamName);
        var shortDestination = Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.LogSoftmax<float>([1, 2, 3], new float[2]));
        Assert.Equal("logProbabilities", shortDestination.ParamName);
        var emptyJacobian = Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.SoftmaxJacobian<double>([], new double[1], 1));
        Assert.Equal("logits", emptyJacobian.ParamName);
    }

    [Fact]
    public void TheConvenienceLossRequiresOneRowOfLogitsPerLabel()
    {
        float[] eight = [1, 2, 3, 4, 5, 6, 7, 8];
        var error = Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.CrossEntropy<float>(3, eight, [0, 1]));
        Assert.Equal("logits", error.ParamName);
        float loss = SoftmaxPrimitives.CrossEntropy<float>(3, eight.AsSpan(0, 6), [0, 1]);
        double expected = (Math.Log(Math.Exp(-2) + Math.Exp(-1) + 1) + 2 + Math.Log(Math.Exp(-2) + Math.Exp(-1) + 1) + 1) / 2;
        Assert.True(Math.Abs(loss - expected) < 1e-6, $"loss {loss}, expected {expected}");
    }

    [Fact]
    public void AskingForNeitherLossNorGradientIsAnArgumentException()
    {
        var error = Assert.Throws<ArgumentException>(() =>
            SoftmaxPrimitives.CrossEntropy<float>(2, 3, new float[6], 3, [0, 1], default, default, default, 3));
        Assert.Equal("loss", error.ParamName);
    }
}
