using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace NativeSoftmax.Simd;

/// <summary>
/// log(1 + x) for float64 lanes, at any width: the per-lane log Σ of rows across lanes
/// (<see cref="Kernels.LaneExpSums{TVec, T}"/>), which as one scalar log per row cost about as much
/// as the rest of a 10-class log_softmax. The same function as <see cref="Kernels.ExpSum.Log"/>'s
/// scalar one to a few ulp of float64 (VecLogTests, at every width), on SSE2, AVX and NEON alike (its
/// polynomial fused where the ISA has FMA, as the library's exp).
/// </summary>
/// <remarks>
/// u = 1 + x = m·2^k with m in [√½, √2) (from the bits of u, <see cref="IVec{TSelf, T}.Significand"/>), log u = k·ln2 + 2·atanh(s),
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

    /// <summary>log(1 + x) lane-wise, at any float64 width (see the class remarks).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TD LogOnePlus<TD>(TD x)
        where TD : struct, IVec<TD, double>
    {
        TD one = TD.Create(1.0);
        TD u = one + x;
        TD m = TD.Significand(u, out TD exponent);
        TD above = TD.LessThan(TD.Create(Sqrt2), m);
        m = TD.Select(above, m * TD.Create(0.5), m);
        TD k = exponent + TD.Select(above, one, TD.Create(0.0)); // + 1 where m was halved

        TD f = m - one;
        TD s = f / (TD.Create(2.0) + f);
        TD z = s * s;
        // Horner's rule on z, split in two halves evaluated side by side (Estrin's first step):
        // r = z·(P(z) + z⁵·Q(z)), P the terms 1/3 … 1/11, Q 1/13 … 1/19.
        TD z2 = z * z, z5 = z2 * z2 * z;
        TD p = TD.MultiplyAdd(TD.Create(1.0 / 11), z, TD.Create(1.0 / 9));
        TD q = TD.MultiplyAdd(TD.Create(1.0 / 19), z, TD.Create(1.0 / 17));
        p = TD.MultiplyAdd(p, z, TD.Create(1.0 / 7));
        q = TD.MultiplyAdd(q, z, TD.Create(1.0 / 15));
        p = TD.MultiplyAdd(p, z, TD.Create(1.0 / 5));
        q = TD.MultiplyAdd(q, z, TD.Create(1.0 / 13));
        p = TD.MultiplyAdd(p, z, TD.Create(1.0 / 3));
        TD r = TD.MultiplyAdd(z5, q, p);
        r *= z;
        // 2s + 2s·r = f − s·(f − 2r) (as 2s = f − s·f): f is exact, so the roundings fall on the
        // smaller term only.
        TD logM = f - (s * (f - (r + r)) - k * TD.Create(Ln2Lo));
        TD logU = k * TD.Create(Ln2Hi) + logM;

        TD corrected = logU * (x / (u - one));
        return TD.Select(TD.EqualTo(u, one), x, corrected);
    }
}
