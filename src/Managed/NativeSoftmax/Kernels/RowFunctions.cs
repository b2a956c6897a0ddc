using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Kernels;

// The row functions: each struct is one lane-wise formula over one or more rows, named for what it
// computes. The loops of an IRowLoop run them (store, sum, or both); the row kernels
// (RowKernels.cs) and the operations in Operations/ compose them.
// Optional weight rows are null pointers meaning "all ones".

/// <summary>x_i (for Σ x).</summary>
internal readonly unsafe struct Elements<TVec, T>(T* x) : IRowFunction<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVec Apply(nuint i) => TVec.Load(x + i);
}

/// <summary>a_i·b_i (for ⟨a, b⟩).</summary>
internal readonly unsafe struct Products<TVec, T>(T* a, T* b) : IRowFunction<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVec Apply(nuint i) => TVec.Load(a + i) * TVec.Load(b + i);
}

/// <summary>exp(x_i − shift): the unnormalised softmax. The shift is one per row, or one per lane
/// for rows across lanes (<see cref="LaneTile{TVec, T}"/>).</summary>
internal readonly unsafe struct ExpShifted<TVec, T>(T* x, TVec shift) : IRowFunction<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    private readonly TVec _negativeShift = TVec.Create(T.Zero) - shift; // ExpOfDifference's 0 − shift, once

    public ExpShifted(T* x, T shift) : this(x, TVec.Create(shift))
    {
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVec Apply(nuint i) => VecMath.ExpOfSum<TVec, T>(TVec.Load(x + i), _negativeShift);
}

/// <summary><see cref="ExpShifted{TVec, T}"/>, prefetching x_(i + ahead) on x86: the next chunk of a long row
/// (<see cref="LongRow{TVec, T}"/>) or the next row (<see cref="NextRowPrefetch"/>), read from memory while
/// these exponentials keep the core busy. <c>ahead</c> is in elements; the caller keeps x + i + ahead
/// inside memory it may read.</summary>
internal readonly unsafe struct ExpShiftedAhead<TVec, T>(T* x, T shift, nuint ahead) : IRowFunction<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    private readonly ExpShifted<TVec, T> _exp = new(x, shift);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVec Apply(nuint i)
    {
        if (Sse.IsSupported)
        {
            Sse.Prefetch0(x + i + ahead);
        }
        return _exp.Apply(i);
    }

    /// <summary><typeparamref name="TLoop"/>'s <see cref="IRowLoop{TVec, T}.SumExps"/> of exp(x − shift),
    /// prefetching <paramref name="ahead"/> elements on when it is not 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ExpSum SumExps<TLoop>(T* x, T shift, T* storeTo, nuint n, nuint ahead)
        where TLoop : struct, IRowLoop<TVec, T> =>
        ahead != 0
            ? TLoop.SumExps(new ExpShiftedAhead<TVec, T>(x, shift, ahead), storeTo, n)
            : TLoop.SumExps(new ExpShifted<TVec, T>(x, shift), storeTo, n);
}

/// <summary><see cref="ExpShifted{TVec, T}"/> of a long row of 16-bit storage widened into float32
/// scratch (<see cref="LongRow{TVec, T}.HalfStorage"/>), prefetching on x86 element i of two 16-bit
/// arrays: the next chunk's input, which the next chunk's widening then reads from the cache, and this
/// chunk's output, which the output pass's narrowing then writes without waiting for its lines. The
/// 16-bit passes have no arithmetic to hide memory behind; these exponentials do. The caller keeps
/// both arrays' i-th elements inside memory it may read.</summary>
internal readonly unsafe struct ExpShiftedFetchingHalves<TVec, T>(T* x, T shift, ushort* nextInput, ushort* output) : IRowFunction<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    private readonly ExpShifted<TVec, T> _exp = new(x, shift);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVec Apply(nuint i)
    {
        if (Sse.IsSupported)
        {
            Sse.Prefetch0(nextInput + i);
            Sse.Prefetch0(output + i);
        }
        return _exp.Apply(i);
    }
}

/// <summary>exp(x_i − shift)·scale, scale ≥ 0: softmax in one pass, once the row's maximum and sum are known.</summary>
internal readonly unsafe struct ExpShiftedScaled<TVec, T>(T* x, T shift, T scale) : IRowFunction<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    private readonly TVec _negativeShift = TVec.Create(T.Zero) - TVec.Create(shift);
    private readonly TVec _scale = TVec.Create(scale);

    public static bool IsNonNegative => true; // scale = 1/Σ ≥ 0

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVec Apply(nuint i) => VecMath.ExpOfSum<TVec, T>(TVec.Load(x + i), _negativeShift) * _scale;
}

/// <summary>e_i·scale for exponentials e_i ≥ 0 and a scale ≥ 0 (softmax from stored exp(z − max)): never negative.
/// The scale is one per row, or one per lane for rows across lanes.</summary>
internal readonly unsafe struct ScaledExps<TVec, T>(T* exps, TVec scale) : IRowFunction<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    public ScaledExps(T* exps, T scale) : this(exps, TVec.Create(scale))
    {
    }

    public static bool IsNonNegative => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVec Apply(nuint i) => TVec.Load(exps + i) * scale;
}

/// <summary>x_i·scale.</summary>
internal readonly unsafe struct Scaled<TVec, T>(T* x, T scale) : IRowFunction<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    private readonly TVec _scale = TVec.Create(scale);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVec Apply(nuint i) => TVec.Load(x + i) * _scale;
}

/// <summary>(x_i − max) − logSum: log_softmax, subtracting the two parts separately so that a large
/// max does not round away the small differences. Both are one per row, or one per lane for rows across lanes.</summary>
internal readonly unsafe struct LogSoftmaxOf<TVec, T>(T* x, TVec max, TVec logSum) : IRowFunction<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    public LogSoftmaxOf(T* x, T max, T logSum) : this(x, TVec.Create(max), TVec.Create(logSum))
    {
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVec Apply(nuint i) => (TVec.Load(x + i) - max) - logSum;
}

/// <summary>o_i·(g_i − dot): the softmax vector–Jacobian product, dot = ⟨g, o⟩.</summary>
internal readonly unsafe struct SoftmaxVjp<TVec, T>(T* output, T* grad, T dot) : IRowFunction<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    private readonly TVec _dot = TVec.Create(dot);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVec Apply(nuint i) => TVec.Load(output + i) * (TVec.Load(grad + i) - _dot);
}

/// <summary>g_i − exp(logOutput_i)·gradSum: the log_softmax vector–Jacobian product (gradSum one per row,
/// or one per lane for rows across lanes).</summary>
internal readonly unsafe struct LogSoftmaxVjp<TVec, T>(T* logOutput, T* grad, TVec gradSum) : IRowFunction<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    private readonly TVec _negativeGradSum = TVec.Create(T.NegativeOne) * gradSum; // −x exactly, −0 for +0 included

    public LogSoftmaxVjp(T* logOutput, T* grad, T gradSum) : this(logOutput, grad, TVec.Create(gradSum))
    {
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVec Apply(nuint i) =>
        TVec.MultiplyAdd(VecMath.Exp<TVec, T>(TVec.Load(logOutput + i)), _negativeGradSum, TVec.Load(grad + i));
}

/// <summary>w_i·(max − z_i) ≥ 0 (w = 1 without weights): Σ of it plus Σw·log Σexp is Σ_i w_i·(lse − z_i)
/// without the cancellation of Σw·lse − Σ w·z. The max is one per row, or one per lane for rows across lanes
/// (whose weight row is then the weights broadcast across lanes, <see cref="LaneTile{TVec, T}.Broadcast"/>).</summary>
internal readonly unsafe struct WeightedGaps<TVec, T>(T* z, TVec max, T* weight) : IRowFunction<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    public WeightedGaps(T* z, T max, T* weight) : this(z, TVec.Create(max), weight)
    {
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVec Apply(nuint i)
    {
        TVec gap = max - TVec.Load(z + i);
        return weight == null ? gap : gap * TVec.Load(weight + i);
    }
}

/// <summary>x_i·scale − offset·w_i (w = 1 without weights): turns the stored exp(z − max) of a row
/// into the hard-label cross-entropy gradient, before the label's own −(1 − ε)·w_t is added. Scale and
/// offset are one per row, or one per lane for rows across lanes (given as −offset).</summary>
internal readonly unsafe struct ScaledMinusWeights<TVec, T>(T* x, TVec scale, TVec negativeOffset, T* weight)
    : IRowFunction<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    public ScaledMinusWeights(T* x, T scale, T offset, T* weight) : this(x, TVec.Create(scale), TVec.Create(-offset), weight)
    {
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVec Apply(nuint i)
    {
        TVec w = weight == null ? TVec.Create(T.One) : TVec.Load(weight + i);
        return TVec.MultiplyAdd(negativeOffset, w, TVec.Load(x + i) * scale);
    }
}

/// <summary>ŷ_i = (keep·p_i + spread)·w_i: a soft target after label smoothing (keep = 1 − ε,
/// spread = ε/C) and class weights.</summary>
internal readonly unsafe struct SmoothedTargets<TVec, T>(T* target, T keep, T spread, T* weight)
    : IRowFunction<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    private readonly TVec _keep = TVec.Create(keep);
    private readonly TVec _spread = TVec.Create(spread);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVec Apply(nuint i)
    {
        TVec y = TVec.MultiplyAdd(TVec.Load(target + i), _keep, _spread);
        return weight == null ? y : y * TVec.Load(weight + i);
    }
}

/// <summary>ŷ_i·(max − z_i), and 0 where ŷ_i = 0 (so a zero target on a −∞ logit adds 0, as xlogy).</summary>
internal readonly unsafe struct SoftTargetGaps<TVec, T>(T* z, TVec max, SmoothedTargets<TVec, T> targets)
    : IRowFunction<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    public SoftTargetGaps(T* z, T max, SmoothedTargets<TVec, T> targets) : this(z, TVec.Create(max), targets)
    {
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVec Apply(nuint i)
    {
        TVec zero = TVec.Create(T.Zero);
        TVec y = targets.Apply(i);
        return TVec.Select(TVec.EqualTo(y, zero), zero, y * (max - TVec.Load(z + i)));
    }
}

/// <summary>
/// The soft-target cross-entropy gradient s·(o_i·Σŷ − ŷ_i) = s·(e_i·Σŷ − ŷ_i·S)/S, e_i = exp(z_i − max):
/// e_i·scale − s·ŷ_i with scale = s·Σŷ/S; and where e_i = 1 (the maximum) as
/// (Σŷ − ŷ_i)·(s/S) − ŷ_i·(s·(S − 1)/S), which keeps its accuracy when o_i ≈ 1 and ŷ_i ≈ Σŷ
/// (the other form would be s·(1/S − 1)·ŷ_i, rounded to 0 for a dominant class). The e_i come from
/// <typeparamref name="TExps"/>: computed from the logits (<see cref="ExpShifted{TVec, T}"/>), or
/// read back where the sum's pass stored them (<see cref="Elements{TVec, T}"/>), the same values.
/// The per-row factors are <see cref="SoftTargetGradientTerms{T}"/>; rows across lanes compute the same on float64
/// vectors of lanes (SoftTargetCrossEntropyOperation.LaneTerms).
/// </summary>
internal readonly unsafe struct SoftTargetGradient<TVec, T, TExps>(TExps exps, SmoothedTargets<TVec, T> targets,
    TVec negativeGradScale, TVec targetSum, TVec scale, TVec atMaxScale, TVec negativeAtMaxRestScale)
    : IRowFunction<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
    where TExps : struct, IRowFunction<TVec, T>
{
    /// <summary>The gradient of one row, its factors from <paramref name="terms"/>.</summary>
    public SoftTargetGradient(TExps exps, SmoothedTargets<TVec, T> targets, SoftTargetGradientTerms<T> terms)
        : this(exps, targets, TVec.Create(terms.NegativeGradScale), TVec.Create(terms.TargetSum), TVec.Create(terms.Scale),
            TVec.Create(terms.AtMaxScale), TVec.Create(terms.NegativeAtMaxRestScale))
    {
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVec Apply(nuint i)
    {
        TVec e = exps.Apply(i);
        TVec y = targets.Apply(i);
        TVec gradient = TVec.MultiplyAdd(y, negativeGradScale, e * scale);
        TVec atMax = TVec.MultiplyAdd(y, negativeAtMaxRestScale, (targetSum - y) * atMaxScale);
        return TVec.Select(TVec.EqualTo(e, TVec.Create(T.One)), atMax, gradient);
    }
}

/// <summary>The factors of <see cref="SoftTargetGradient{TVec, T, TExps}"/> for a row whose gradient
/// scale is s, whose targets sum to Σŷ and whose exponentials to S (<see cref="ExpSum"/>): −s, Σŷ,
/// s·Σŷ/S, s/S and −s·(S − 1)/S, each formed in float64 and rounded once to T. The formulas are
/// <see cref="Factors"/>, on float64 lanes of any width: one row here, rows across lanes in
/// SoftTargetCrossEntropyOperation.LaneTerms.</summary>
internal readonly struct SoftTargetGradientTerms<T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    [MethodImpl(MethodImplOptions.NoInlining)] // once per row; compiled apart, it leaves the row loops their inlining budget
    public SoftTargetGradientTerms(double gradScale, double targetSum, ExpSum sum)
    {
        Factors(VecScalar<double>.Create(gradScale), VecScalar<double>.Create(targetSum), VecScalar<double>.Create(sum.Others),
            VecScalar<double>.Create(sum.AtMax), out VecScalar<double> scale, out VecScalar<double> atMaxScale, out VecScalar<double> atMaxRestScale);
        NegativeGradScale = T.CreateTruncating(-gradScale);
        TargetSum = T.CreateTruncating(targetSum);
        Scale = T.CreateTruncating(VecScalar<double>.SumLanes(scale));
        AtMaxScale = T.CreateTruncating(VecScalar<double>.SumLanes(atMaxScale));
        NegativeAtMaxRestScale = T.CreateTruncating(-VecScalar<double>.SumLanes(atMaxRestScale));
    }

    public T NegativeGradScale { get; }
    public T TargetSum { get; }
    public T Scale { get; }
    public T AtMaxScale { get; }
    public T NegativeAtMaxRestScale { get; }

    /// <summary>s·Σŷ/S, s/S and s·(S − 1)/S (the last without its sign) from s, Σŷ and S's two parts
    /// (S − 1 = others + (atMax − 1), <see cref="ExpSum.Excluding"/>), lane by lane in float64.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Factors<TD>(TD gradScale, TD targetSum, TD others, TD atMax, out TD scale, out TD atMaxScale, out TD atMaxRestScale)
        where TD : struct, IVec<TD, double>
    {
        TD total = others + atMax;
        scale = gradScale * targetSum / total;
        atMaxScale = gradScale / total;
        atMaxRestScale = gradScale * (others + (atMax - TD.Create(1.0))) / total;
    }
}
