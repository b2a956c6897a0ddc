using NativeSoftmax;

namespace NativeSoftmax.Tests;

public class SmokeTests
{
    [Fact]
    public void SoftmaxOfOneRowMatchesTheDefinition()
    {
        double[] z = [1.0, 2.0, 3.0, -1e4];
        double[] o = new double[4];
        SoftmaxPrimitives.Softmax<double>(z, o);
        double den = Math.Exp(1 - 3.0) + Math.Exp(2 - 3.0) + 1.0;
        Assert.Equal(Math.Exp(-2.0) / den, o[0], 1e-15);
        Assert.Equal(1.0 / den, o[2], 1e-15);
        Assert.Equal(0.0, o[3]);
    }
}
