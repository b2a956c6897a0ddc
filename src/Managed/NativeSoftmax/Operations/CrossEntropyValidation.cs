using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Operations;

/// <summary>The checks and the reduction shared by the hard-label and soft-target cross-entropy.</summary>
internal static unsafe class CrossEntropyValidation
{
    /// <summary>Everything but the targets: shape, logits, weight, options, outputs, overlaps.</summary>
    public static bool Check<T>(long rows, long cols, T* logits, long ldLogits, Region target, T* weight,
        LossOptions options, T* loss, T* grad, long ldGrad, bool gradMayBeTarget,
        out double weightSum, [NotNullWhen(false)] out Failure? failure)
        where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
        Check<T, T>(rows, cols, logits, ldLogits, target, weight, options, loss, grad, ldGrad, gradMayBeTarget, out weightSum, out failure);

    /// <summary>
    /// <see cref="Check{T}"/> with the logits and grad matrices stored as <typeparamref name="TMatrix"/>
    /// (the half-precision operations: 16-bit matrices, float32 weight, loss and grad_output).
    /// </summary>
    public static bool Check<T, TMatrix>(long rows, long cols, TMatrix* logits, long ldLogits, Region target, T* weight,
        LossOptions options, T* loss, TMatrix* grad, long ldGrad, bool gradMayBeTarget,
        out double weightSum, [NotNullWhen(false)] out Failure? failure)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TMatrix : unmanaged
    {
        weightSum = cols;
        if (!Checks.Shape(rows, cols, out failure)
            || !Checks.Required(logits, rows, "logits", out failure)
            || !Checks.Matrix(rows, cols, ldLogits, "ld_logits", sizeof(TMatrix), out failure)
            || !Checks.Required(target.Start, rows, target.Name, out failure))
        {
            return false;
        }
        if (loss == null && grad == null && rows > 0)
        {
            failure = new(Status.NullPointer, "loss", "loss and grad are both NULL: ask for at least one of them.");
            return false;
        }
        if (grad != null && !Checks.Matrix(rows, cols, ldGrad, "ld_grad", sizeof(TMatrix), out failure))
        {
            return false;
        }
        if (!Options(options, out failure) || !Weights(weight, cols, out weightSum, out failure))
        {
            return false;
        }

        long lossCount = options.Reduction == Reduction.None ? rows : 1;
        var logitsRegion = Region.Matrix(logits, rows, cols, ldLogits, "logits", sizeof(TMatrix));
        var weightRegion = new Region(weight, weight == null ? 0 : cols, cols, "weight");
        var lossRegion = new Region(loss, loss == null ? 0 : lossCount, lossCount, "loss");
        var gradRegion = grad == null ? new Region(null, 0, 0, "grad") : Region.Matrix(grad, rows, cols, ldGrad, "grad", sizeof(TMatrix));
        var gradOutputRegion = new Region(options.GradOutput, rows, rows, "grad_output");
        return Checks.Disjoint(gradRegion, logitsRegion, sizeof(T), exactAllowed: true, out failure)
            && Checks.Disjoint(gradRegion, gradOutputRegion, sizeof(T), exactAllowed: false, out failure)
            && Checks.Disjoint(lossRegion, gradOutputRegion, sizeof(T), exactAllowed: false, out failure)
            && Checks.Disjoint(gradRegion, target, sizeof(T), exactAllowed: gradMayBeTarget, out failure)
            && Checks.Disjoint(gradRegion, weightRegion, sizeof(T), exactAllowed: false, out failure)
            && Checks.Disjoint(lossRegion, logitsRegion, sizeof(T), exactAllowed: false, out failure)
            && Checks.Disjoint(lossRegion, target, sizeof(T), exactAllowed: false, out failure)
            && Checks.Disjoint(lossRegion, weightRegion, sizeof(T), exactAllowed: false, out failure)
            && Checks.Disjoint(lossRegion, gradRegion, sizeof(T), exactAllowed: false, out failure);
    }

    /// <summary>The options: reduction, label_smoothing in [0, 1], a finite grad_scale, grad_output with reduction none only.</summary>
    public static bool Options(LossOptions options, [NotNullWhen(false)] out Failure? failure)
    {
        failure = null;
        if (options.Reduction is not (Reduction.None or Reduction.Sum or Reduction.Mean))
        {
            failure = new(Status.InvalidArgument, "reduction", $"reduction must be none (0), sum (1) or mean (2), got {(int)options.Reduction}.");
            return false;
        }
        if (!(options.LabelSmoothing >= 0.0 && options.LabelSmoothing <= 1.0))
        {
            failure = new(Status.InvalidArgument, "label_smoothing", $"label_smoothing must be in [0, 1], got {options.LabelSmoothing}.");
            return false;
        }
        if (!double.IsFinite(options.GradScale))
        {
            failure = new(Status.InvalidArgument, "grad_scale", $"grad_scale must be finite, got {options.GradScale}.");
            return false;
        }
        if (options.GradOutput != null && options.Reduction != Reduction.None)
        {
            failure = new(Status.InvalidArgument, "grad_output",
                $"grad_output gives each row's loss its upstream gradient, for reduction none only; with reduction {options.Reduction.ToString().ToLowerInvariant()} "
                + "the loss is one value: pass its upstream gradient as grad_scale.");
            return false;
        }
        return true;
    }

    /// <summary>The class weights (NULL: all ones, Σw = cols): every one finite; their sum
    /// (<see cref="SumOfWeights"/>).</summary>
    public static bool Weights<T>(T* weight, long cols, out double weightSum, [NotNullWhen(false)] out Failure? failure)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        failure = null;
        weightSum = cols;
        if (weight == null)
        {
            return true;
        }
        weightSum = SumOfWeights(weight, cols);
        if (double.IsFinite(weightSum))
        {
            return true; // a NaN or ±∞ weight makes the sum NaN or ±∞
        }
        weightSum = 0;
        for (long j = 0; j < cols; j++)
        {
            if (!T.IsFinite(weight[j]))
            {
                failure = new(Status.InvalidArgument, "weight", $"weight[{j}] is {weight[j]}; class weights must be finite.");
                return false;
            }
            // Finite float64 weights near ±DBL_MAX can overflow a lane where the sum in column order
            // stays finite: that order decides then, as it did before the lanes.
            weightSum += double.CreateTruncating(weight[j]);
        }
        return true;
    }

    /// <summary>Lanes of <see cref="SumOfWeights"/>.</summary>
    private const int WeightLanes = 16;

    /// <summary>
    /// Σ w_j in float64, as 16 partial sums (w_j added to sum j mod 16, in column order), then added
    /// in lane order: the same bits on every CPU and instruction set, and 16 independent additions
    /// in flight where one running sum waited for each. There is a weight per class, as many as a
    /// row has elements: on a row of 2^20 classes the running sum took longer than the row's
    /// cross-entropy itself (CHANGELOG).
    /// </summary>
    internal static double SumOfWeights<T>(T* weight, long cols)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        long full = cols - cols % WeightLanes;
        Vector128<double> s0 = default, s1 = default, s2 = default, s3 = default;
        Vector128<double> s4 = default, s5 = default, s6 = default, s7 = default;
        for (long j = 0; j < full; j += WeightLanes)
        {
            (Vector128<double> low, Vector128<double> high) = FourWide(weight + j);
            s0 += low;
            s1 += high;
            (low, high) = FourWide(weight + j + 4);
            s2 += low;
            s3 += high;
            (low, high) = FourWide(weight + j + 8);
            s4 += low;
            s5 += high;
            (low, high) = FourWide(weight + j + 12);
            s6 += low;
            s7 += high;
        }
        double* lanes = stackalloc double[WeightLanes];
        s0.Store(lanes);
        s1.Store(lanes + 2);
        s2.Store(lanes + 4);
        s3.Store(lanes + 6);
        s4.Store(lanes + 8);
        s5.Store(lanes + 10);
        s6.Store(lanes + 12);
        s7.Store(lanes + 14);
        for (long j = full; j < cols; j++)
        {
            lanes[j - full] += double.CreateTruncating(weight[j]);
        }
        double total = 0;
        for (int k = 0; k < WeightLanes; k++)
        {
            total += lanes[k];
        }
        return total;
    }

    /// <summary>w_0 … w_3 in float64, as two pairs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector128<double> Low, Vector128<double> High) FourWide<T>(T* w)
        where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
        typeof(T) == typeof(float)
            ? Vector128.Widen(Vector128.Load((float*)w))
            : (Vector128.Load((double*)w), Vector128.Load((double*)w + 2));

    private static readonly double PositiveNaN = BitConverter.Int64BitsToDouble(0x7FF8_0000_0000_0000);

    /// <summary><paramref name="total"/> plus <paramref name="count"/> row losses computed across
    /// lanes, added one by one in row order, each stored to <c>loss[first + i]</c> (flushed) when
    /// <paramref name="loss"/> is not null (the reduction "none").</summary>
    /// <remarks>Call it last in a method: a value live across a call lives on the stack, and the
    /// chained additions would each wait for a store and a load.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double SumRowLosses<T>(double total, double* rowLosses, int count, T* loss, long first)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        for (int i = 0; i < count; i++)
        {
            total += rowLosses[i];
            if (loss != null)
            {
                loss[first + i] = VecMath.FlushSubnormal(T.CreateTruncating(rowLosses[i]));
            }
        }
        return total;
    }

    /// <summary>The gradient's factor for row <paramref name="r"/>: <paramref name="scale"/> (from
    /// <see cref="GradientScale"/>) times the row's upstream gradient when grad_output is given.</summary>
    public static double RowScale<T>(LossOptions options, double scale, long r)
        where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
        options.GradOutput == null ? scale : scale * double.CreateTruncating(((T*)options.GradOutput)[r]);

    /// <summary>
    /// The gradient's factor s: grad_scale, divided by the divisor for the mean. A mean over a
    /// divisor of 0 is NaN (as its loss is), so every row it covers gets a NaN gradient; ignored
    /// rows still get 0.
    /// </summary>
    public static double GradientScale(LossOptions options, double divisor) =>
        options.Reduction != Reduction.Mean ? options.GradScale
        : divisor == 0 ? PositiveNaN
        : options.GradScale / divisor;

    /// <summary>Writes the reduced loss (sum or mean) from the float64 total: the mean over a
    /// divisor of 0 is NaN (not ±∞, whatever the total), as the header says.</summary>
    public static void StoreReduced<T>(T* loss, Reduction reduction, double total, double divisor)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (loss != null && reduction != Reduction.None)
        {
            // double.NaN (and the x86 default NaN of 0/0) has its sign bit set: give the positive
            // quiet NaN, which C prints as "nan", not "-nan".
            double reduced = reduction == Reduction.Sum ? total : divisor == 0 ? PositiveNaN : total / divisor;
            *loss = VecMath.FlushSubnormal(T.CreateTruncating(double.IsNaN(reduced) ? PositiveNaN : reduced));
        }
    }
}
