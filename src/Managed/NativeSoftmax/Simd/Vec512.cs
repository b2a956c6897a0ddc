using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace NativeSoftmax.Simd;

/// <summary>The 512-bit width: a thin wrapper over <see cref="Vector512{T}"/>.</summary>
internal readonly struct Vec512<T> : IVec<Vec512<T>, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    private readonly Vector512<T> _v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Vec512(Vector512<T> v) => _v = v;

    public static int Count => Vector512<T>.Count;
    public static bool IsHardwareAccelerated => Vector512.IsHardwareAccelerated;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512<T> Create(T value) => new(Vector512.Create(value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vec512<T> Load(T* source) => new(Vector512.Load(source));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Store(Vec512<T> value, T* destination) => value._v.Store(destination);

    /// <remarks>Four blocks of half the width, each transposed by <see cref="Vec256{T}.Transpose"/>,
    /// the two off the diagonal trading places.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Transpose(T* source, nint sourceStride, T* destination, nint destinationStride)
    {
        nint half = Count / 2;
        Vec256<T>.Transpose(source, sourceStride, destination, destinationStride);
        Vec256<T>.Transpose(source + half, sourceStride, destination + half * destinationStride, destinationStride);
        Vec256<T>.Transpose(source + half * sourceStride, sourceStride, destination + half, destinationStride);
        Vec256<T>.Transpose(source + half * sourceStride + half, sourceStride, destination + half * destinationStride + half, destinationStride);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512<T> operator +(Vec512<T> left, Vec512<T> right) => new(left._v + right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512<T> operator -(Vec512<T> left, Vec512<T> right) => new(left._v - right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512<T> operator *(Vec512<T> left, Vec512<T> right) => new(left._v * right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512<T> operator /(Vec512<T> left, Vec512<T> right) => new(left._v / right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512<T> MultiplyAdd(Vec512<T> a, Vec512<T> b, Vec512<T> c)
    {
        if (typeof(T) == typeof(float))
        {
            return new(Vector512.MultiplyAddEstimate(a._v.AsSingle(), b._v.AsSingle(), c._v.AsSingle()).As<float, T>());
        }
        return new(Vector512.MultiplyAddEstimate(a._v.AsDouble(), b._v.AsDouble(), c._v.AsDouble()).As<double, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512<T> Max(Vec512<T> left, Vec512<T> right) => new(Vector512.MaxNative(left._v, right._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512<T> LessThan(Vec512<T> left, Vec512<T> right) => new(Vector512.LessThan(left._v, right._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512<T> EqualTo(Vec512<T> left, Vec512<T> right) => new(Vector512.Equals(left._v, right._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512<T> Select(Vec512<T> mask, Vec512<T> ifTrue, Vec512<T> ifFalse) =>
        new(Vector512.ConditionalSelect(mask._v, ifTrue._v, ifFalse._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512<T> LanesFrom(int firstLane) =>
        new(Vector512.GreaterThanOrEqual(Vector512<T>.Indices, Vector512.Create(T.CreateTruncating(firstLane))));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512<T> FlushSubnormal(Vec512<T> value)
    {
        Vector512<T> tiny = Vector512.LessThan(Vector512.Abs(value._v), Vector512.Create(VecMath.MinNormal<T>()));
        return new(Vector512.AndNot(value._v, tiny));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512<T> Pow2FromShifted(Vec512<T> shifted)
    {
        if (typeof(T) == typeof(float))
        {
            Vector512<int> bits = shifted._v.AsInt32() + Vector512.Create(VecMath.SingleExponentBias);
            return new(Vector512.ShiftLeft(bits, VecMath.SingleMantissaBits).As<int, T>());
        }
        Vector512<long> wide = shifted._v.AsInt64() + Vector512.Create(VecMath.DoubleExponentBias);
        return new(Vector512.ShiftLeft(wide, VecMath.DoubleMantissaBits).As<long, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec512<T> Significand(Vec512<T> value, out Vec512<T> exponent)
    {
        if (typeof(T) == typeof(float))
        {
            Vector512<int> bits = value._v.AsInt32();
            Vector512<int> field = Vector512.ShiftRightLogical(bits, VecMath.SingleMantissaBits) | Vector512.Create(VecMath.SingleTwoToMantissaBits);
            exponent = new((field.AsSingle() - Vector512.Create(VecMath.SingleExponentOffset)).As<float, T>());
            return new(((bits & Vector512.Create(VecMath.SingleMantissaMask)) | Vector512.Create(VecMath.SingleOne)).As<int, T>());
        }
        Vector512<long> wide = value._v.AsInt64();
        Vector512<long> wideField = Vector512.ShiftRightLogical(wide, VecMath.DoubleMantissaBits) | Vector512.Create(VecMath.DoubleTwoToMantissaBits);
        exponent = new((wideField.AsDouble() - Vector512.Create(VecMath.DoubleExponentOffset)).As<double, T>());
        return new(((wide & Vector512.Create(VecMath.DoubleMantissaMask)) | Vector512.Create(VecMath.DoubleOne)).As<long, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int CountTrue(Vec512<T> mask) => BitOperations.PopCount(Vector512.ExtractMostSignificantBits(mask._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T SumLanes(Vec512<T> value) => Vector512.Sum(value._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T MaxLanes(Vec512<T> value) =>
        Vec256<T>.MaxLanes(Vec256<T>.FromVector(Vector256.MaxNative(value._v.GetLower(), value._v.GetUpper())));
}
