namespace NativeSoftmax.Tests;

/// <summary>
/// log_softmax in place (output = logits, its exponentials summed without stores) gives the same
/// bits as out of place (exponentials stored in the output while summed): both sums come back in
/// the same form, unsplit from a total of 2 up, at every width.
/// </summary>
public class InPlaceBitsTests
{
    [Theory]
    [MemberData(nameof(Cases.WidthsAndTypes), MemberType = typeof(Cases))]
    public void LogSoftmaxInPlaceIsBitwiseOutOfPlace(Width width, string dtype)
    {
        if (dtype == "float32")
        {
            Check<float>(width);
        }
        else
        {
            Check<double>(width);
        }
    }

    private static void Check<T>(Width width)
        where T : unmanaged, System.Numerics.IBinaryFloatingPointIeee754<T>
    {
        const int Rows = 64;
        foreach (int cols in Cases.Lengths.Append(8197)) // and a row that goes by chunks
        {
            Matrix<T> logits = TestData.Uniform<T>(401 + cols, Rows, cols, cols, -5, 5);
            var outOfPlace = new Matrix<T>(Rows, cols, cols);
            Ops.LogSoftmax(width, logits, outOfPlace);
            var inPlace = new Matrix<T>(Rows, cols, cols);
            Array.Copy(logits.Data, inPlace.Data, logits.Data.Length);
            Ops.LogSoftmax(width, inPlace, inPlace);
            for (int i = 0; i < Rows * cols; i++)
            {
                Assert.True(inPlace.Span[i].Equals(outOfPlace.Span[i]),
                    $"{typeof(T).Name} {width} cols {cols}: element {i} is {inPlace.Span[i]:R} in place, {outOfPlace.Span[i]:R} out of place");
            }
        }
    }
}
