using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace NativeSoftmax.Simd;

/// <summary>
/// log(1 + x) for two float64 lanes at once: the per-lane log Σ of rows across lanes
/// (<see cref="Kernels.LaneExpSums{TVec, T}"/>), which as one scalar log per row cost about as much
/// as the rest of a 10-class log_softmax. The same function as <see cref="Kernels.ExpSum.Log"/>'s
/// scalar one to a few ulp of float64 (VecLogTests), on SSE2 and NEON alike (its polynomial fused
/// where the ISA has FMA, as the library's exp).
/// </summary>
/// <remarks>
/// u = 1 + x = m·2^k with m in [√½, √2) (from the bits of u), log u = k·ln2 + 2·atanh(s),
/// f = m − 1 (exact), s = f/(2 + f), |s| ≤ 0.1716, and 2·atanh(s) = 2s + 2s·r with
/// r = s²/3 + s⁴/5 + … + s¹⁸/19 (the first term left out, s²⁰/21, is below 2^−55 of the sum),
/// evaluated as f − s·(f − 2r) so that the roundings fall on the smaller term. ln 2 is split in
/// two so that k·ln2 is exact in its upper part. Then
/// log(1 + x) = log(u)·x/(u − 1), which corrects for the rounding of u (D. Goldberg, "What every
/// computer scientist should know about floating-point arithmetic", theorem 4), and x itself where u
/// rounds to 1. For x ≥ 0, NaN and +∞ (NaN, as the scalar form); not for negative x.
/// </remarks>
internal static class VecLog
{
    private const double Ln2Hi = 0.6931471805598903;       // 0x1.62e42fefa3800p-1: ln 2 to 42 bits, so k·Ln2Hi is exact for |k| < 2^11
    private const double Ln2Lo = 5.497923018708371e-14;    // 0x1.ef35793c76730p-45: ln 2 − Ln2Hi
    private const double Sqrt2 = 1.4142135623730951;
    private const double TwoTo52 = 4503599627370496.0;     // 2^52: the exponent field read as an integer below it
    private const long MantissaMask = 0x000FFFFFFFFFFFFF;
    private const long ExponentOfOne = 0x3FF0000000000000;  // the bits of 1.0
    private const long ExponentOfTwoTo52 = 0x4330000000000000; // the bits of 2^52

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<double> LogOnePlus(Vector128<double> x)
    {
        Vector128<double> one = Vector128.Create(1.0);
        Vector128<double> u = one + x;
        Vector128<long> bits = u.AsInt64();
        Vector128<double> m = ((bits & Vector128.Create(MantissaMask)) | Vector128.Create(ExponentOfOne)).AsDouble();
        Vector128<double> above = Vector128.GreaterThan(m, Vector128.Create(Sqrt2));
        m = Vector128.ConditionalSelect(above, m * Vector128.Create(0.5), m);
        // k = exponent field − 1023 (+ 1 where m was halved), exactly: the field as the low bits of 2^52's mantissa.
        Vector128<double> field = (Vector128.ShiftRightLogical(bits, 52) | Vector128.Create(ExponentOfTwoTo52)).AsDouble();
        Vector128<double> k = (field - Vector128.Create(TwoTo52 + 1023)) + (above & one);

        Vector128<double> f = m - one;
        Vector128<double> s = f / (Vector128.Create(2.0) + f);
        Vector128<double> z = s * s;
        // Horner's rule on z, split in two halves evaluated side by side (Estrin's first step):
        // r = z·(P(z) + z⁵·Q(z)), P the terms 1/3 … 1/11, Q 1/13 … 1/19.
        Vector128<double> z2 = z * z, z5 = z2 * z2 * z;
        Vector128<double> p = Vector128.MultiplyAddEstimate(Vector128.Create(1.0 / 11), z, Vector128.Create(1.0 / 9));
        Vector128<double> q = Vector128.MultiplyAddEstimate(Vector128.Create(1.0 / 19), z, Vector128.Create(1.0 / 17));
        p = Vector128.MultiplyAddEstimate(p, z, Vector128.Create(1.0 / 7));
        q = Vector128.MultiplyAddEstimate(q, z, Vector128.Create(1.0 / 15));
        p = Vector128.MultiplyAddEstimate(p, z, Vector128.Create(1.0 / 5));
        q = Vector128.MultiplyAddEstimate(q, z, Vector128.Create(1.0 / 13));
        p = Vector128.MultiplyAddEstimate(p, z, Vector128.Create(1.0 / 3));
        Vector128<double> r = Vector128.MultiplyAddEstimate(z5, q, p);
        r *= z;
        // 2s + 2s·r = f − s·(f − 2r) (as 2s = f − s·f): f is exact, so the roundings fall on the
        // smaller term only.
        Vector128<double> logM = f - (s * (f - (r + r)) - k * Vector128.Create(Ln2Lo));
        Vector128<double> logU = k * Vector128.Create(Ln2Hi) + logM;

        Vector128<double> corrected = logU * (x / (u - one));
        return Vector128.ConditionalSelect(Vector128.Equals(u, one), x, corrected);
    }
}
