using System.Numerics;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Tests;

/// <summary>
/// IVec.Transpose at every width and type, the step that stages short rows across lanes: each
/// destination element is the source element with its indices swapped, with strides wider than a
/// vector on both sides, and no element between the strided vectors is written.
/// </summary>
public class TransposeTests
{
    private const int SourcePadding = 3, DestinationPadding = 5;

    [Fact]
    public void EveryWidthTransposesFloat32() => EveryWidth<float>();

    [Fact]
    public void EveryWidthTransposesFloat64() => EveryWidth<double>();

    private static void EveryWidth<T>()
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        Check<VecScalar<T>, T>();
        Check<Vec128<T>, T>();
        Check<Vec256<T>, T>();
        Check<Vec512<T>, T>();
    }

    private static unsafe void Check<TVec, T>()
        where TVec : struct, IVec<TVec, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        int w = TVec.Count;
        int sourceStride = w + SourcePadding, destinationStride = w + DestinationPadding;
        var source = new T[w * sourceStride];
        var destination = new T[w * destinationStride];
        T guard = T.CreateTruncating(-12345.0);
        for (int k = 0; k < source.Length; k++)
        {
            source[k] = T.CreateTruncating(k + 1);
        }
        Array.Fill(destination, guard);
        fixed (T* s = source, d = destination)
        {
            TVec.Transpose(s, sourceStride, d, destinationStride);
        }
        for (int j = 0; j < w; j++)
        {
            for (int i = 0; i < destinationStride; i++)
            {
                T expected = i < w ? source[i * sourceStride + j] : guard;
                Assert.True(destination[j * destinationStride + i] == expected,
                    $"{typeof(TVec).Name}<{typeof(T).Name}>: destination[{j}·{destinationStride} + {i}] = {destination[j * destinationStride + i]}, expected {expected}");
            }
        }
    }
}
