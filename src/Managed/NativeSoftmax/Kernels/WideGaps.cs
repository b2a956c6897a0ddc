using System.Numerics;

namespace NativeSoftmax.Kernels;

/// <summary>
/// The smoothing sums of the cross-entropy, Σ_j y_j·(max − z_j), formed and summed in float64:
/// the float32 kernels (<see cref="WeightedGaps{TVec, T}"/>, <see cref="SoftTargetGaps{TVec, T}"/>)
/// overflow when max − z_j or the sum passes FLT_MAX (logits ±3e38: the gap is 6e38, the loss
/// still finite), and the operations redo such a row here; likewise a long row's chunk sum of class
/// weights near FLT_MAX (<see cref="Weights"/>). A plain loop: only reached for rows whose float32
/// sum is not finite.
/// </summary>
internal static unsafe class WideGaps
{
    /// <summary>Σ_j w_j·(max − z_j) (w = 1 without weights), as <see cref="WeightedGaps{TVec, T}"/>.</summary>
    public static double Weighted<T>(T* z, T max, T* weight, nuint n)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        double m = double.CreateTruncating(max), total = 0;
        for (nuint j = 0; j < n; j++)
        {
            double gap = m - double.CreateTruncating(z[j]);
            total += weight == null ? gap : double.CreateTruncating(weight[j]) * gap;
        }
        return total;
    }

    /// <summary>Σ_j w_j in float64 (n where <paramref name="weight"/> is null): class weights near
    /// FLT_MAX overflow a float32 sum.</summary>
    public static double Weights<T>(T* weight, nuint n)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (weight == null)
        {
            return n;
        }
        double total = 0;
        for (nuint j = 0; j < n; j++)
        {
            total += double.CreateTruncating(weight[j]);
        }
        return total;
    }

    /// <summary>Σ_j ŷ_j·(max − z_j) over ŷ_j ≠ 0, ŷ_j = (keep·p_j + spread)·w_j, as <see cref="SoftTargetGaps{TVec, T}"/>.</summary>
    public static double SoftTargets<T>(T* z, T max, T* target, double keep, double spread, T* weight, nuint n)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        double m = double.CreateTruncating(max), total = 0;
        for (nuint j = 0; j < n; j++)
        {
            double y = (keep * double.CreateTruncating(target[j]) + spread) * (weight == null ? 1.0 : double.CreateTruncating(weight[j]));
            total += y == 0 ? 0 : y * (m - double.CreateTruncating(z[j]));
        }
        return total;
    }
}
