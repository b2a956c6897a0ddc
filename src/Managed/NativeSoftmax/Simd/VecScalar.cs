using System.Numerics;
using System.Runtime.CompilerServices;

namespace NativeSoftmax.Simd;

/// <summary>
/// The one-lane width: the same kernels run on rows shorter than the narrowest vector, and on
/// CPUs without SIMD. Masks are all-ones (every bit set) or zero, as in the vector widths.
/// </summary>
internal readonly struct VecScalar<T> : IVec<VecScalar<T>, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    private readonly T _v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private VecScalar(T v) => _v = v;

    public static int Count => 1;
    public static bool IsHardwareAccelerated => true;

    private static T AllOnes
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            if (typeof(T) == typeof(float))
            {
                float bits = BitConverter.Int32BitsToSingle(-1);
                return Unsafe.As<float, T>(ref bits);
            }
            double wide = BitConverter.Int64BitsToDouble(-1L);
            return Unsafe.As<double, T>(ref wide);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static VecScalar<T> Mask(bool condition) => new(condition ? AllOnes : T.Zero);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsSet(VecScalar<T> mask) => !T.IsZero(mask._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static VecScalar<T> Create(T value) => new(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe VecScalar<T> Load(T* source) => new(*source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Store(VecScalar<T> value, T* destination) => *destination = value._v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Transpose(T* source, nint sourceStride, T* destination, nint destinationStride) =>
        *destination = *source;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static VecScalar<T> operator +(VecScalar<T> left, VecScalar<T> right) => new(left._v + right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static VecScalar<T> operator -(VecScalar<T> left, VecScalar<T> right) => new(left._v - right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static VecScalar<T> operator *(VecScalar<T> left, VecScalar<T> right) => new(left._v * right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static VecScalar<T> operator /(VecScalar<T> left, VecScalar<T> right) => new(left._v / right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static VecScalar<T> MultiplyAdd(VecScalar<T> a, VecScalar<T> b, VecScalar<T> c) =>
        new(T.MultiplyAddEstimate(a._v, b._v, c._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static VecScalar<T> Max(VecScalar<T> left, VecScalar<T> right) =>
        new(left._v > right._v ? left._v : right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static VecScalar<T> LessThan(VecScalar<T> left, VecScalar<T> right) => Mask(left._v < right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static VecScalar<T> EqualTo(VecScalar<T> left, VecScalar<T> right) => Mask(left._v == right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static VecScalar<T> Select(VecScalar<T> mask, VecScalar<T> ifTrue, VecScalar<T> ifFalse) =>
        IsSet(mask) ? ifTrue : ifFalse;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static VecScalar<T> LanesFrom(int firstLane) => Mask(firstLane <= 0);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static VecScalar<T> FlushSubnormal(VecScalar<T> value) => new(VecMath.FlushSubnormal(value._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static VecScalar<T> Pow2FromShifted(VecScalar<T> shifted)
    {
        T v = shifted._v;
        if (typeof(T) == typeof(float))
        {
            int bits = (BitConverter.SingleToInt32Bits(Unsafe.As<T, float>(ref v)) + VecMath.SingleExponentBias)
                       << VecMath.SingleMantissaBits;
            float pow2 = BitConverter.Int32BitsToSingle(bits);
            return new(Unsafe.As<float, T>(ref pow2));
        }
        long wide = (BitConverter.DoubleToInt64Bits(Unsafe.As<T, double>(ref v)) + VecMath.DoubleExponentBias)
                    << VecMath.DoubleMantissaBits;
        double pow2Wide = BitConverter.Int64BitsToDouble(wide);
        return new(Unsafe.As<double, T>(ref pow2Wide));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static VecScalar<T> Significand(VecScalar<T> value, out VecScalar<T> exponent)
    {
        T v = value._v;
        if (typeof(T) == typeof(float))
        {
            int bits = BitConverter.SingleToInt32Bits(Unsafe.As<T, float>(ref v));
            float e = BitConverter.Int32BitsToSingle((bits >>> VecMath.SingleMantissaBits) | VecMath.SingleTwoToMantissaBits) - VecMath.SingleExponentOffset;
            float m = BitConverter.Int32BitsToSingle((bits & VecMath.SingleMantissaMask) | VecMath.SingleOne);
            exponent = new(Unsafe.As<float, T>(ref e));
            return new(Unsafe.As<float, T>(ref m));
        }
        long wide = BitConverter.DoubleToInt64Bits(Unsafe.As<T, double>(ref v));
        double wideE = BitConverter.Int64BitsToDouble((wide >>> VecMath.DoubleMantissaBits) | VecMath.DoubleTwoToMantissaBits) - VecMath.DoubleExponentOffset;
        double wideM = BitConverter.Int64BitsToDouble((wide & VecMath.DoubleMantissaMask) | VecMath.DoubleOne);
        exponent = new(Unsafe.As<double, T>(ref wideE));
        return new(Unsafe.As<double, T>(ref wideM));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int CountTrue(VecScalar<T> mask) => IsSet(mask) ? 1 : 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T SumLanes(VecScalar<T> value) => value._v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T MaxLanes(VecScalar<T> value) => value._v;
}
