using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace NativeSoftmax.Simd;

/// <summary>The 128-bit width: a thin wrapper over <see cref="Vector128{T}"/>.</summary>
internal readonly struct Vec128<T> : IVec<Vec128<T>, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    private readonly Vector128<T> _v;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Vec128(Vector128<T> v) => _v = v;

    public static int Count => Vector128<T>.Count;
    public static bool IsHardwareAccelerated => Vector128.IsHardwareAccelerated;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec128<T> Create(T value) => new(Vector128.Create(value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vec128<T> Load(T* source) => new(Vector128.Load(source));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Store(Vec128<T> value, T* destination) => value._v.Store(destination);

    /// <remarks>float32 4 × 4 by unpacks and half moves (SSE) or 32- and 64-bit zips (NEON); float64
    /// 2 × 2 by unpacks or zips.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Transpose(T* source, nint sourceStride, T* destination, nint destinationStride)
    {
        if (typeof(T) == typeof(float) && Sse.IsSupported)
        {
            float* s = (float*)source, d = (float*)destination;
            Vector128<float> r0 = Sse.LoadVector128(s), r1 = Sse.LoadVector128(s + sourceStride);
            Vector128<float> r2 = Sse.LoadVector128(s + 2 * sourceStride), r3 = Sse.LoadVector128(s + 3 * sourceStride);
            Vector128<float> t0 = Sse.UnpackLow(r0, r1), t1 = Sse.UnpackHigh(r0, r1);
            Vector128<float> t2 = Sse.UnpackLow(r2, r3), t3 = Sse.UnpackHigh(r2, r3);
            Sse.Store(d, Sse.MoveLowToHigh(t0, t2));
            Sse.Store(d + destinationStride, Sse.MoveHighToLow(t2, t0));
            Sse.Store(d + 2 * destinationStride, Sse.MoveLowToHigh(t1, t3));
            Sse.Store(d + 3 * destinationStride, Sse.MoveHighToLow(t3, t1));
        }
        else if (typeof(T) == typeof(double) && Sse2.IsSupported)
        {
            double* s = (double*)source, d = (double*)destination;
            Vector128<double> r0 = Sse2.LoadVector128(s), r1 = Sse2.LoadVector128(s + sourceStride);
            Sse2.Store(d, Sse2.UnpackLow(r0, r1));
            Sse2.Store(d + destinationStride, Sse2.UnpackHigh(r0, r1));
        }
        else if (typeof(T) == typeof(float) && AdvSimd.Arm64.IsSupported)
        {
            float* s = (float*)source, d = (float*)destination;
            Vector128<float> r0 = AdvSimd.LoadVector128(s), r1 = AdvSimd.LoadVector128(s + sourceStride);
            Vector128<float> r2 = AdvSimd.LoadVector128(s + 2 * sourceStride), r3 = AdvSimd.LoadVector128(s + 3 * sourceStride);
            Vector128<double> t0 = AdvSimd.Arm64.ZipLow(r0, r1).AsDouble(), t1 = AdvSimd.Arm64.ZipHigh(r0, r1).AsDouble();
            Vector128<double> t2 = AdvSimd.Arm64.ZipLow(r2, r3).AsDouble(), t3 = AdvSimd.Arm64.ZipHigh(r2, r3).AsDouble();
            AdvSimd.Store(d, AdvSimd.Arm64.ZipLow(t0, t2).AsSingle());
            AdvSimd.Store(d + destinationStride, AdvSimd.Arm64.ZipHigh(t0, t2).AsSingle());
            AdvSimd.Store(d + 2 * destinationStride, AdvSimd.Arm64.ZipLow(t1, t3).AsSingle());
            AdvSimd.Store(d + 3 * destinationStride, AdvSimd.Arm64.ZipHigh(t1, t3).AsSingle());
        }
        else if (typeof(T) == typeof(double) && AdvSimd.Arm64.IsSupported)
        {
            double* s = (double*)source, d = (double*)destination;
            Vector128<double> r0 = AdvSimd.LoadVector128(s), r1 = AdvSimd.LoadVector128(s + sourceStride);
            AdvSimd.Store(d, AdvSimd.Arm64.ZipLow(r0, r1));
            AdvSimd.Store(d + destinationStride, AdvSimd.Arm64.ZipHigh(r0, r1));
        }
        else
        {
            VecMath.TransposeLanes<Vec128<T>, T>(source, sourceStride, destination, destinationStride);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec128<T> operator +(Vec128<T> left, Vec128<T> right) => new(left._v + right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec128<T> operator -(Vec128<T> left, Vec128<T> right) => new(left._v - right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec128<T> operator *(Vec128<T> left, Vec128<T> right) => new(left._v * right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec128<T> operator /(Vec128<T> left, Vec128<T> right) => new(left._v / right._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec128<T> MultiplyAdd(Vec128<T> a, Vec128<T> b, Vec128<T> c)
    {
        if (typeof(T) == typeof(float))
        {
            return new(Vector128.MultiplyAddEstimate(a._v.AsSingle(), b._v.AsSingle(), c._v.AsSingle()).As<float, T>());
        }
        return new(Vector128.MultiplyAddEstimate(a._v.AsDouble(), b._v.AsDouble(), c._v.AsDouble()).As<double, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec128<T> Max(Vec128<T> left, Vec128<T> right) => new(Vector128.MaxNative(left._v, right._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec128<T> LessThan(Vec128<T> left, Vec128<T> right) => new(Vector128.LessThan(left._v, right._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec128<T> EqualTo(Vec128<T> left, Vec128<T> right) => new(Vector128.Equals(left._v, right._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec128<T> Select(Vec128<T> mask, Vec128<T> ifTrue, Vec128<T> ifFalse)
    {
        if (Sse41.IsSupported) // a blend on the sign bit: every mask is a comparison's (see Vec256.Select)
        {
            return typeof(T) == typeof(float)
                ? new(Sse41.BlendVariable(ifFalse._v.AsSingle(), ifTrue._v.AsSingle(), mask._v.AsSingle()).As<float, T>())
                : new(Sse41.BlendVariable(ifFalse._v.AsDouble(), ifTrue._v.AsDouble(), mask._v.AsDouble()).As<double, T>());
        }
        return new(Vector128.ConditionalSelect(mask._v, ifTrue._v, ifFalse._v));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec128<T> LanesFrom(int firstLane) =>
        new(Vector128.GreaterThanOrEqual(Vector128<T>.Indices, Vector128.Create(T.CreateTruncating(firstLane))));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec128<T> FlushSubnormal(Vec128<T> value)
    {
        Vector128<T> tiny = Vector128.LessThan(Vector128.Abs(value._v), Vector128.Create(VecMath.MinNormal<T>()));
        return new(Vector128.AndNot(value._v, tiny));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec128<T> Pow2FromShifted(Vec128<T> shifted)
    {
        if (typeof(T) == typeof(float))
        {
            Vector128<int> bits = shifted._v.AsInt32() + Vector128.Create(VecMath.SingleExponentBias);
            return new(Vector128.ShiftLeft(bits, VecMath.SingleMantissaBits).As<int, T>());
        }
        Vector128<long> wide = shifted._v.AsInt64() + Vector128.Create(VecMath.DoubleExponentBias);
        return new(Vector128.ShiftLeft(wide, VecMath.DoubleMantissaBits).As<long, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vec128<T> Significand(Vec128<T> value, out Vec128<T> exponent)
    {
        if (typeof(T) == typeof(float))
        {
            Vector128<int> bits = value._v.AsInt32();
            Vector128<int> field = Vector128.ShiftRightLogical(bits, VecMath.SingleMantissaBits) | Vector128.Create(VecMath.SingleTwoToMantissaBits);
            exponent = new((field.AsSingle() - Vector128.Create(VecMath.SingleExponentOffset)).As<float, T>());
            return new(((bits & Vector128.Create(VecMath.SingleMantissaMask)) | Vector128.Create(VecMath.SingleOne)).As<int, T>());
        }
        Vector128<long> wide = value._v.AsInt64();
        Vector128<long> wideField = Vector128.ShiftRightLogical(wide, VecMath.DoubleMantissaBits) | Vector128.Create(VecMath.DoubleTwoToMantissaBits);
        exponent = new((wideField.AsDouble() - Vector128.Create(VecMath.DoubleExponentOffset)).As<double, T>());
        return new(((wide & Vector128.Create(VecMath.DoubleMantissaMask)) | Vector128.Create(VecMath.DoubleOne)).As<long, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int CountTrue(Vec128<T> mask) => BitOperations.PopCount(Vector128.ExtractMostSignificantBits(mask._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T SumLanes(Vec128<T> value) => Vector128.Sum(value._v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vec128<T> FromVector(Vector128<T> v) => new(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<T> AsVector(Vec128<T> value) => value._v;

    /// <remarks>Two (float) or one (double) shuffle-and-max steps, no branches; NaN lanes follow
    /// the CPU's max rule (callers never rely on it).</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T MaxLanes(Vec128<T> value)
    {
        if (typeof(T) == typeof(float))
        {
            Vector128<float> v = value._v.AsSingle();
            v = Vector128.MaxNative(v, Vector128.Shuffle(v, Vector128.Create(2, 3, 0, 1)));
            v = Vector128.MaxNative(v, Vector128.Shuffle(v, Vector128.Create(1, 0, 3, 2)));
            return v.As<float, T>().ToScalar();
        }
        Vector128<double> d = value._v.AsDouble();
        return Vector128.MaxNative(d, Vector128.Shuffle(d, Vector128.Create(1L, 0L))).As<double, T>().ToScalar();
    }
}
