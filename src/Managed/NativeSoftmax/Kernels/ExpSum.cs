namespace NativeSoftmax.Kernels;

/// <summary>
/// Σ_j exp(z_j − max) of one row, in two parts: <see cref="AtMax"/>, the elements whose
/// exponential is exactly 1 (the maximum, and any other element within half an ulp of it), and
/// <see cref="Others"/>, the sum of all the rest. A sum in the working precision would round the
/// rest away against the 1s when one class dominates (f32: 1 + 2e-9 = 1); kept apart, it gives
/// log Σ, 1 − o_max and o_max·(1 − o_max) to full relative accuracy. Both parts are float64.
/// The split is needed only when S − 1 is small against S: a loop may give a total of at least
/// <see cref="RowLoop{TVec, T}.SplitBelow"/> (2) unsplit, as (S − 1, 1), where S − 1 ≥ S/2 keeps the
/// total's relative accuracy.
/// </summary>
internal readonly struct ExpSum(double others, double atMax)
{
    /// <summary>Σ of the exponentials below 1.</summary>
    public double Others => others;

    /// <summary>How many exponentials are exactly 1 (at least 1 in a row that is not NaN); 1 for a total
    /// of at least 2 given unsplit.</summary>
    public double AtMax => atMax;

    /// <summary>S = Σ_j exp(z_j − max).</summary>
    public double Total => others + atMax;

    /// <summary>log S = log1p(others + (atMax − 1)): exact to a few ulp however small the others.</summary>
    public double Log => LogOnePlus(others + (atMax - 1));

    /// <summary>S − e for an element whose exponential is <paramref name="e"/> (the sum of all
    /// the others); for e = 1 that is others + (atMax − 1), with no cancellation.</summary>
    public double Excluding(double e) => e == 1 ? others + (atMax - 1) : (others - e) + atMax;

    /// <summary>
    /// log(1 + x) for x ≥ 0 to a few ulp (Math has no log1p): with u = 1 + x rounded,
    /// log(u)·x/(u − 1) corrects for the rounding of u (D. Goldberg, "What every computer
    /// scientist should know about floating-point arithmetic", theorem 4).
    /// </summary>
    private static double LogOnePlus(double x)
    {
        double u = 1 + x;
        return u == 1 ? x : Math.Log(u) * (x / (u - 1));
    }
}
