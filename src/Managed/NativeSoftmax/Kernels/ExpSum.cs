using System.Runtime.CompilerServices;

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
    /// log(1 + x) for x ≥ 0 (NaN gives NaN) in float64, within 3 ulp of a libm-based log1p
    /// (ExpSumLogTests, over every binade from 2^-60 to 2^62; 2.0 measured), inline: no call to libm's log, whose call and
    /// dependent chain cost a short row more than its arithmetic. With u = 1 + x rounded and
    /// u = 2^k·m, m in [√½, √2): for k = 0, log1p(x) is <see cref="LogNearOne"/>(x) of x itself,
    /// exact input; otherwise k·ln 2 + log m plus the rounding of u, (x − (u − 1))/u.
    /// </summary>
    internal static double LogOnePlus(double x)
    {
        double u = 1 + x;
        if (u == 1)
        {
            return x; // x < 2^-53 (and 0, subnormals): log1p(x) rounds to x
        }
        if (!(u < FastLogLimit))
        {
            return Math.Log(u); // NaN, +∞ and sums beyond any row's (S ≤ cols)
        }
        long bits = BitConverter.DoubleToInt64Bits(u);
        long k = (bits - SqrtHalfBits) >> 52;
        if (k == 0)
        {
            return LogNearOne(x);
        }
        double m = BitConverter.Int64BitsToDouble(bits - (k << 52));
        return k * Ln2High + (LogNearOne(m - 1) + (k * Ln2Low + (x - (u - 1)) / u));
    }

    /// <summary>The largest u = 1 + x <see cref="LogOnePlus"/> reduces itself (k·<see cref="Ln2High"/> stays exact).</summary>
    private const double FastLogLimit = 1e300;

    /// <summary>The bits of √½ rounded: u − √½ in the bits gives k = ⌊log2(u/√½)⌋ in the exponent field.</summary>
    private const long SqrtHalfBits = 0x3FE6A09E667F3BCD;

    /// <summary>ln 2 cut to 37 significant bits (k·Ln2High is exact for |k| &lt; 2^16), and ln 2 − Ln2High rounded.</summary>
    private const double Ln2High = 0.6931471805582987; // 0x3FE62E42FEFA0000
    private const double Ln2Low = 1.6465949582897082e-12;

    /// <summary>
    /// log(1 + f) for 1 + f in [√½, √2): 2·atanh(s) with s = f/(2 + f), |s| ≤ 0.1716, as
    /// 2s + s·z·P(z), z = s², P the atanh series 2/3 + 2z/5 + … + 2z^8/19 (its truncation is below
    /// 2^-55 relative).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double LogNearOne(double f)
    {
        double s = f / (2 + f), z = s * s;
        double p = 2.0 / 19;
        p = p * z + 2.0 / 17;
        p = p * z + 2.0 / 15;
        p = p * z + 2.0 / 13;
        p = p * z + 2.0 / 11;
        p = p * z + 2.0 / 9;
        p = p * z + 2.0 / 7;
        p = p * z + 2.0 / 5;
        p = p * z + 2.0 / 3;
        return 2 * s + s * (z * p);
    }
}
