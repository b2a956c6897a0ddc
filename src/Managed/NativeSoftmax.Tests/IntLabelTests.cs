using System.Numerics;
using System.Runtime.InteropServices;
using NativeSoftmax.Operations;

namespace NativeSoftmax.Tests;

/// <summary>
/// int labels (the CrossEntropy overloads taking <c>ReadOnlySpan&lt;int&gt;</c>): the same bits as
/// the same labels as long, at every width and through every overload; out-of-range labels and
/// ignore_index as for long; the labels' memory counted in ints for the overlap checks.
/// </summary>
public unsafe class IntLabelTests
{
    private const int Rows = 7;

    [Theory, MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void IntLabelsGiveTheBitsOfLongLabels(Width width, string dtype)
    {
        if (dtype == "float32")
        {
            SameBits<float>(width);
        }
        else
        {
            SameBits<double>(width);
        }
    }

    private static void SameBits<T>(Width width)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        var options = new CrossEntropyOptions { Reduction = Reduction.None, LabelSmoothing = 0.2, IgnoreIndex = -1 };
        foreach (int cols in Cases.Lengths)
        {
            int seed = 1_500_000 + cols;
            string context = $"cross_entropy int labels width={width} dtype={TestData.Name<T>()} cols={cols} seed={seed}";
            Matrix<T> logits = TestData.Uniform<T>(seed, Rows, cols, cols + 1, -30, 30);
            T[] weight = TestData.Vector<T>(seed + 1, cols, 0.5, 2);
            long[] labels = TestData.Labels(seed + 2, Rows, cols, options.IgnoreIndex);
            int[] intLabels = [.. labels.Select(t => (int)t)];
            T[] gradOutput = TestData.Vector<T>(seed + 3, Rows, -2, 2);
            T[] loss = new T[Rows], intLoss = new T[Rows];
            Matrix<T> grad = new(Rows, cols, cols), intGrad = new(Rows, cols, cols);
            Ops.CrossEntropy(width, logits, labels, weight, options, loss, grad, gradOutput);
            IntCrossEntropy(width, logits, intLabels, weight, options, intLoss, intGrad, gradOutput);
            Assert.True(loss.SequenceEqual(intLoss), $"{context}: losses differ");
            Assert.True(grad.Data.SequenceEqual(intGrad.Data), $"{context}: gradients differ");
        }
    }

    /// <summary><see cref="Ops.CrossEntropy{T}"/> with int labels.</summary>
    private static void IntCrossEntropy<T>(Width width, Matrix<T> logits, int[] target, T[] weight,
        CrossEntropyOptions options, T[] loss, Matrix<T> grad, T[] gradOutput)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (width == Width.PublicApi)
        {
            SoftmaxPrimitives.CrossEntropy<T>(logits.Rows, logits.Cols, logits.Span, logits.Ld, target, weight, gradOutput,
                loss, grad.Span, grad.Ld, options);
            return;
        }
        fixed (T* z = logits.Data)
        fixed (int* t = target)
        fixed (T* w = weight)
        fixed (T* u = gradOutput)
        fixed (T* l = loss)
        fixed (T* g = grad.Data)
        {
            Ops.RunAt<HardLabelCrossEntropyOperation<T, int, LossOptions>, T>(width,
                new(logits.Rows, logits.Cols, z, logits.Ld, t, w, options.ToLossOptions(u), l, g, grad.Ld));
        }
    }

    [Fact]
    public void TheOtherIntOverloadsGiveTheBitsOfTheirLongOverloads()
    {
        float[] logits = [.. TestData.Vector<float>(9, 4 * 6, -5, 5)];
        long[] labels = [5, 0, -100, 3];
        int[] intLabels = [5, 0, -100, 3];
        float[] grad = new float[24], intGrad = new float[24];
        Assert.Equal(SoftmaxPrimitives.CrossEntropy<float>(6, logits, labels, grad), SoftmaxPrimitives.CrossEntropy<float>(6, logits, intLabels, intGrad));
        Assert.Equal(grad, intGrad);
        float[] loss = new float[1], intLoss = new float[1];
        var sum = new CrossEntropyOptions { Reduction = Reduction.Sum };
        SoftmaxPrimitives.CrossEntropy<float>(4, 6, logits, 6, labels, default, loss, grad, 6, sum);
        SoftmaxPrimitives.CrossEntropy<float>(4, 6, logits, 6, intLabels, default, intLoss, intGrad, 6, sum);
        Assert.Equal(loss, intLoss);
        Assert.Equal(grad, intGrad);
    }

    [Theory]
    [InlineData(6)]
    [InlineData(-1)]
    [InlineData(int.MinValue)]
    [InlineData(int.MaxValue)]
    public void AnIntLabelOutOfRangeThrowsAndWritesNothing(int badLabel)
    {
        float[] loss = [7], grad = Enumerable.Repeat(7f, 18).ToArray();
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => SoftmaxPrimitives.CrossEntropy<float>(
            3, 6, new float[18], 6, new int[] { 0, 5, badLabel }, default, loss, grad, 6));
        Assert.Equal("target", error.ParamName);
        Assert.Contains($"target[2] = {badLabel}", error.Message);
        Assert.True(loss[0] == 7 && grad.All(v => v == 7), "a rejected call wrote its outputs");
    }

    /// <summary>ignore_index is a long; an int label equal to it (as a number) is ignored, and one
    /// outside int's range matches no int label.</summary>
    [Fact]
    public void IgnoreIndexComparesAsLong()
    {
        float[] loss = new float[2];
        var none = new CrossEntropyOptions { Reduction = Reduction.None, IgnoreIndex = int.MinValue };
        SoftmaxPrimitives.CrossEntropy<float>(2, 3, [1, 2, 3, 1, 2, 3], 3, new int[] { int.MinValue, 0 }, default, loss, default, 3, none);
        Assert.Equal(0f, loss[0]);
        Assert.True(loss[1] > 0);
        var beyond = none with { IgnoreIndex = (long)int.MinValue - 1 };
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            SoftmaxPrimitives.CrossEntropy<float>(2, 3, [1, 2, 3, 1, 2, 3], 3, new int[] { int.MinValue, 0 }, default, loss, default, 3, beyond));
    }

    /// <summary>Labels as ints span 4 bytes each: three labels just after a gradient are disjoint
    /// from it (as longs they would reach into it), one element earlier they overlap it.</summary>
    [Fact]
    public void IntLabelsSpanFourBytesInTheOverlapChecks()
    {
        float[] buffer = new float[40];
        // Labels 0, 1, 2 as the bit patterns of floats: buffer[12..15] seen as ints.
        for (int i = 0; i < 3; i++)
        {
            buffer[12 + i] = BitConverter.Int32BitsToSingle(i);
            buffer[11 + i + 20] = BitConverter.Int32BitsToSingle(i);
        }
        float[] logits = [.. TestData.Vector<float>(2, 12, -1, 1)];
        float[] loss = new float[1];
        ReadOnlySpan<int> after = MemoryMarshal.Cast<float, int>(buffer.AsSpan(12, 3));
        SoftmaxPrimitives.CrossEntropy<float>(3, 4, logits, 4, after, default, loss, buffer.AsSpan(0, 12), 4);
        Assert.True(float.IsFinite(loss[0]));
        // The gradient buffer[20..32] and labels buffer[31..34]: the last gradient element is the first label.
        float[] before = [.. buffer];
        var error = Assert.Throws<ArgumentException>(() => SoftmaxPrimitives.CrossEntropy<float>(
            3, 4, logits, 4, MemoryMarshal.Cast<float, int>(buffer.AsSpan(31, 3)), default, loss, buffer.AsSpan(20, 12), 4));
        Assert.Equal("grad", error.ParamName);
        Assert.Equal(before, buffer);
    }
}
