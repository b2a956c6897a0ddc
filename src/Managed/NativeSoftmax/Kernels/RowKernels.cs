using System.Numerics;
using System.Runtime.CompilerServices;
using NativeSoftmax.Operations;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Kernels;

// The four row-to-row kernels: one row of input(s) to one row of output, each written once over
// the loop type (RowLoop for any row, ShortRow for rows of one to two vectors). The operation that
// runs them over a batch is RowToRowOperation.

/// <summary>probabilities = softmax(logits): max, then exp(z − max) stored and summed, then scaled
/// by 1/Σ (the maximum's exponential is exactly 1, so its probability is 1/Σ). Long rows go by
/// chunks of columns (<see cref="LongRow{TVec, T}"/>).</summary>
internal readonly struct SoftmaxRow : IRowKernel
{
    public static ArgumentName Input => new("logits", "ld_logits");
    public static ArgumentName? SecondInput => null;
    public static ArgumentName Output => new("probabilities", "ld_probabilities");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Row<TVec, T, TLoop>(T* logits, T* unused, T* probabilities, nuint n, nuint nextRowDistance)
        where TVec : struct, IVec<TVec, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TLoop : struct, IRowLoop<TVec, T>
    {
        if (LongRow<TVec, T>.Fits(n))
        {
            LongRow<TVec, T>.Softmax(logits, probabilities, n);
            return;
        }
        T max = TLoop.Max(logits, n);
        ExpSum sum = ExpShiftedAhead<TVec, T>.SumExps<TLoop>(logits, max, probabilities, n, nextRowDistance);
        TLoop.Store(new ScaledExps<TVec, T>(probabilities, T.CreateTruncating(1.0 / sum.Total)), probabilities, n);
    }

    public static bool ConvertsLongRowsByChunks => true;

    public static unsafe void HalfLongRow<TVec>(LongRow<TVec, float>.HalfStorage half, float* scratch, nuint n)
        where TVec : struct, IVec<TVec, float> =>
        LongRow<TVec, float>.Softmax(half, scratch, n);

    public static bool RunsAcrossLanes => true;

    /// <summary>The same steps for Count rows at once, each row's max and 1/Σ in its lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Lanes<TVec, T>(T* tile, T* unused, nuint n)
        where TVec : struct, IVec<TVec, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        TVec max = LaneTile<TVec, T>.Max(tile, n);
        LaneExpSums<TVec, T> sum = LaneTile<TVec, T>.SumExps(new ExpShifted<TVec, T>(tile, max), tile, n);
        LaneTile<TVec, T>.Store(new ScaledExps<TVec, T>(tile, sum.Reciprocals()), tile, n);
    }
}

/// <summary>log_probabilities = (z − max) − log Σ exp(z − max), never log(softmax); log Σ as
/// log1p of the non-maximum terms, so a dominant class keeps its tiny log-probability. Long rows
/// go by chunks of columns (<see cref="LongRow{TVec, T}"/>).</summary>
internal readonly struct LogSoftmaxRow : IRowKernel
{
    public static ArgumentName Input => new("logits", "ld_logits");
    public static ArgumentName? SecondInput => null;
    public static ArgumentName Output => new("log_probabilities", "ld_log_probabilities");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Row<TVec, T, TLoop>(T* logits, T* unused, T* logProbabilities, nuint n, nuint nextRowDistance)
        where TVec : struct, IVec<TVec, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TLoop : struct, IRowLoop<TVec, T>
    {
        if (LongRow<TVec, T>.Fits(n))
        {
            LongRow<TVec, T>.LogSoftmax(logits, logProbabilities, n);
            return;
        }
        T max = TLoop.Max(logits, n);
        // The output row holds the exponentials meanwhile (unless it is the logits): a sum with
        // stores needs no split unless the total is below 2 (IRowLoop.SumExps).
        T* scratch = logProbabilities == logits ? null : logProbabilities;
        ExpSum sum = ExpShiftedAhead<TVec, T>.SumExps<TLoop>(logits, max, scratch, n, nextRowDistance);
        TLoop.Store(new LogSoftmaxOf<TVec, T>(logits, max, T.CreateTruncating(sum.Log)), logProbabilities, n);
    }

    public static bool ConvertsLongRowsByChunks => true;

    public static unsafe void HalfLongRow<TVec>(LongRow<TVec, float>.HalfStorage half, float* scratch, nuint n)
        where TVec : struct, IVec<TVec, float> =>
        LongRow<TVec, float>.LogSoftmax(half, scratch, n);

    public static bool RunsAcrossLanes => true;

    /// <summary>The same steps for Count rows at once, each row's max and log Σ in its lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Lanes<TVec, T>(T* tile, T* unused, nuint n)
        where TVec : struct, IVec<TVec, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        TVec max = LaneTile<TVec, T>.Max(tile, n);
        LaneExpSums<TVec, T> sum = LaneTile<TVec, T>.SumExps(new ExpShifted<TVec, T>(tile, max), null, n);
        LaneTile<TVec, T>.Store(new LogSoftmaxOf<TVec, T>(tile, max, sum.Logs()), tile, n);
    }
}

/// <summary>grad_logits = o ⊙ (g − ⟨g, o⟩): the softmax vector–Jacobian product.</summary>
internal readonly struct SoftmaxBackwardRow : IRowKernel
{
    public static ArgumentName Input => new("grad_output", "ld_grad_output");
    public static ArgumentName? SecondInput => new ArgumentName("output", "ld_output");
    public static ArgumentName Output => new("grad_logits", "ld_grad_logits");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Row<TVec, T, TLoop>(T* gradOutput, T* output, T* gradLogits, nuint n, nuint nextRowDistance)
        where TVec : struct, IVec<TVec, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TLoop : struct, IRowLoop<TVec, T>
    {
        T dot = T.CreateTruncating(TLoop.Sum(new Products<TVec, T>(gradOutput, output), n));
        TLoop.Store(new SoftmaxVjp<TVec, T>(output, gradOutput, dot), gradLogits, n);
    }
}

/// <summary>grad_logits = g − exp(log_o)·Σg: the log_softmax vector–Jacobian product.</summary>
internal readonly struct LogSoftmaxBackwardRow : IRowKernel
{
    public static ArgumentName Input => new("grad_output", "ld_grad_output");
    public static ArgumentName? SecondInput => new ArgumentName("output", "ld_output");
    public static ArgumentName Output => new("grad_logits", "ld_grad_logits");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Row<TVec, T, TLoop>(T* gradOutput, T* output, T* gradLogits, nuint n, nuint nextRowDistance)
        where TVec : struct, IVec<TVec, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TLoop : struct, IRowLoop<TVec, T>
    {
        T gradSum = T.CreateTruncating(TLoop.Sum(new Elements<TVec, T>(gradOutput), n));
        TLoop.Store(new LogSoftmaxVjp<TVec, T>(output, gradOutput, gradSum), gradLogits, n);
    }

    public static bool RunsAcrossLanes => true;

    /// <summary>The same steps for Count rows at once, each row's Σg in its lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Lanes<TVec, T>(T* gradOutput, T* output, nuint n)
        where TVec : struct, IVec<TVec, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        TVec gradSum = LaneTile<TVec, T>.Sum(new Elements<TVec, T>(gradOutput), n);
        LaneTile<TVec, T>.Store(new LogSoftmaxVjp<TVec, T>(output, gradOutput, gradSum), gradOutput, n);
    }
}
