using System.Numerics;
using System.Runtime.CompilerServices;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Tests;

/// <summary>How exp's multiply-adds round, whatever the CPU running the tests.</summary>
public enum Evaluation
{
    /// <summary>Fused, one rounding (the x86-64-v3/v4 and NEON builds).</summary>
    Fma,

    /// <summary>A multiply and an add, two roundings (the x86-64-v2 build, sse4.2).</summary>
    NoFma,
}

/// <summary>A multiply-add rule for <see cref="WithMultiplyAdd{TVec, T, TRule}"/>.</summary>
internal interface IMultiplyAddRule
{
    static abstract TVec Apply<TVec, T>(TVec a, TVec b, TVec c)
        where TVec : struct, IVec<TVec, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>;
}

/// <summary>a·b + c rounded once, lane by lane.</summary>
internal readonly struct FusedRule : IMultiplyAddRule
{
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static unsafe TVec Apply<TVec, T>(TVec a, TVec b, TVec c)
        where TVec : struct, IVec<TVec, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        T* lanes = stackalloc T[3 * 16];
        TVec.Store(a, lanes);
        TVec.Store(b, lanes + 16);
        TVec.Store(c, lanes + 32);
        for (int i = 0; i < TVec.Count; i++)
        {
            lanes[i] = T.FusedMultiplyAdd(lanes[i], lanes[16 + i], lanes[32 + i]);
        }
        return TVec.Load(lanes);
    }
}

/// <summary>a·b rounded, then + c rounded.</summary>
internal readonly struct UnfusedRule : IMultiplyAddRule
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Apply<TVec, T>(TVec a, TVec b, TVec c)
        where TVec : struct, IVec<TVec, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T> => (a * b) + c;
}

/// <summary>
/// The width <typeparamref name="TVec"/> with its MultiplyAdd (an "estimate": fused where the CPU
/// has FMA) replaced by <typeparamref name="TRule"/>, so that a test measures both evaluations the
/// library's builds use on any machine. Everything else is the width's own operation.
/// </summary>
internal readonly struct WithMultiplyAdd<TVec, T, TRule> : IVec<WithMultiplyAdd<TVec, T, TRule>, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TRule : struct, IMultiplyAddRule
{
    private readonly TVec _v;

    private WithMultiplyAdd(TVec v) => _v = v;

    public static int Count => TVec.Count;
    public static bool IsHardwareAccelerated => TVec.IsHardwareAccelerated;
    public static WithMultiplyAdd<TVec, T, TRule> Create(T value) => new(TVec.Create(value));
    public static unsafe WithMultiplyAdd<TVec, T, TRule> Load(T* source) => new(TVec.Load(source));
    public static unsafe void Store(WithMultiplyAdd<TVec, T, TRule> value, T* destination) => TVec.Store(value._v, destination);
    public static unsafe void Transpose(T* source, nint sourceStride, T* destination, nint destinationStride) =>
        TVec.Transpose(source, sourceStride, destination, destinationStride);
    public static WithMultiplyAdd<TVec, T, TRule> operator +(WithMultiplyAdd<TVec, T, TRule> left, WithMultiplyAdd<TVec, T, TRule> right) => new(left._v + right._v);
    public static WithMultiplyAdd<TVec, T, TRule> operator -(WithMultiplyAdd<TVec, T, TRule> left, WithMultiplyAdd<TVec, T, TRule> right) => new(left._v - right._v);
    public static WithMultiplyAdd<TVec, T, TRule> operator *(WithMultiplyAdd<TVec, T, TRule> left, WithMultiplyAdd<TVec, T, TRule> right) => new(left._v * right._v);

    public static WithMultiplyAdd<TVec, T, TRule> operator /(WithMultiplyAdd<TVec, T, TRule> left, WithMultiplyAdd<TVec, T, TRule> right) => new(left._v / right._v);

    public static WithMultiplyAdd<TVec, T, TRule> MultiplyAdd(WithMultiplyAdd<TVec, T, TRule> a, WithMultiplyAdd<TVec, T, TRule> b, WithMultiplyAdd<TVec, T, TRule> c) =>
        new(TRule.Apply<TVec, T>(a._v, b._v, c._v));

    public static WithMultiplyAdd<TVec, T, TRule> Max(WithMultiplyAdd<TVec, T, TRule> left, WithMultiplyAdd<TVec, T, TRule> right) => new(TVec.Max(left._v, right._v));
    public static WithMultiplyAdd<TVec, T, TRule> LessThan(WithMultiplyAdd<TVec, T, TRule> left, WithMultiplyAdd<TVec, T, TRule> right) => new(TVec.LessThan(left._v, right._v));
    public static WithMultiplyAdd<TVec, T, TRule> EqualTo(WithMultiplyAdd<TVec, T, TRule> left, WithMultiplyAdd<TVec, T, TRule> right) => new(TVec.EqualTo(left._v, right._v));

    public static WithMultiplyAdd<TVec, T, TRule> Select(WithMultiplyAdd<TVec, T, TRule> mask, WithMultiplyAdd<TVec, T, TRule> ifTrue, WithMultiplyAdd<TVec, T, TRule> ifFalse) =>
        new(TVec.Select(mask._v, ifTrue._v, ifFalse._v));

    public static WithMultiplyAdd<TVec, T, TRule> LanesFrom(int firstLane) => new(TVec.LanesFrom(firstLane));
    public static WithMultiplyAdd<TVec, T, TRule> FlushSubnormal(WithMultiplyAdd<TVec, T, TRule> value) => new(TVec.FlushSubnormal(value._v));
    public static WithMultiplyAdd<TVec, T, TRule> Pow2FromShifted(WithMultiplyAdd<TVec, T, TRule> shifted) => new(TVec.Pow2FromShifted(shifted._v));

    public static WithMultiplyAdd<TVec, T, TRule> Significand(WithMultiplyAdd<TVec, T, TRule> value, out WithMultiplyAdd<TVec, T, TRule> exponent)
    {
        TVec significand = TVec.Significand(value._v, out TVec e);
        exponent = new(e);
        return new(significand);
    }
    public static int CountTrue(WithMultiplyAdd<TVec, T, TRule> mask) => TVec.CountTrue(mask._v);
    public static T SumLanes(WithMultiplyAdd<TVec, T, TRule> value) => TVec.SumLanes(value._v);
    public static T MaxLanes(WithMultiplyAdd<TVec, T, TRule> value) => TVec.MaxLanes(value._v);
}
