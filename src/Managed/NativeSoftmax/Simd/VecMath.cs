using System.Numerics;
using System.Runtime.CompilerServices;

namespace NativeSoftmax.Simd;

/// <summary>
/// The vectorised exponential, written once per element type and generic over the width.
/// </summary>
/// <remarks>
/// <para>Range reduction (Cody and Waite): x = n·ln2 + r with n = round(x·log2 e) and
/// |r| ≤ ln2/2, where n·ln2 is subtracted in two parts, <c>Ln2Hi</c> (whose low mantissa bits are
/// zero, so n·Ln2Hi is exact) and <c>Ln2Lo</c>. The rounding uses the shifter trick: adding
/// 1.5·2^p (p = mantissa bits) to x·log2 e leaves n in the low bits of the sum, so
/// <c>sum − shifter</c> is n as a float and <c>(bits(sum) + bias) &lt;&lt; p</c> is the bit pattern
/// of 2^n (the shifter's own bits are shifted out).</para>
/// <para>Polynomial: for float, degree 6, 1 + r + r²·q(r) with q fitted to minimise the relative
/// error on [−ln2/2, ln2/2] (3.8e-9 with its coefficients rounded to float, 0.06 ulp; one
/// multiply-add fewer than the degree-7 Taylor series, 5.2e-9, it replaced); for double the Taylor
/// series to degree 13 (≤ (ln2/2)^14/14! = 4e-18, 0.02 ulp); evaluated by Horner's rule. Result
/// e^x = p(r)·2^n.</para>
/// <para>Maximum error, the same at every width: float 0.882 ulp with FMA and 1.176 ulp without
/// (x86-64-v2), measured over every float in [ln FLT_MIN, 0] against exp in double; double 0.88 and
/// 1.13 ulp on samples of [−745, 0] against a double-double reference. nativesoftmax.h promises
/// below 1.25 ulp, which ExpAccuracyTests checks for both evaluations at every width.</para>
/// <para>Special values: NaN → NaN; x below ln(smallest normal) (−87.336544 float, −708.40 double),
/// −∞ included → 0 (no subnormal results); x above (2^e_max + ½)·ln2 (88.38 float, 709.44 double),
/// +∞ included → +∞ (ExpOfSum and ExpOfDifference leave this check out). The library only ever calls it on z − max ≤ 0.</para>
/// </remarks>
internal static class VecMath
{
    private const float MinNormalSingle = 1.17549435e-38f;                // 0x00800000  FLT_MIN = 2^−126
    private const double MinNormalDouble = 2.2250738585072014e-308;       // DBL_MIN = 2^−1022

    /// <summary>The smallest normal number of <typeparamref name="T"/>: FLT_MIN or DBL_MIN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T MinNormal<T>()
        where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
        typeof(T) == typeof(float) ? T.CreateTruncating(MinNormalSingle) : T.CreateTruncating(MinNormalDouble);

    /// <summary>Whether any of x_0 … x_(n−1) is NaN, one element at a time: for the rare rows whose
    /// maximum alone cannot say (every element −∞ or NaN).</summary>
    public static unsafe bool ContainsNaN<T>(T* x, nuint n)
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        for (nuint j = 0; j < n; j++)
        {
            if (T.IsNaN(x[j]))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>The flush rule for one value (see <see cref="IVec{TSelf, T}.FlushSubnormal"/>): a
    /// magnitude below the smallest normal number becomes 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T FlushSubnormal<T>(T value)
        where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
        T.Abs(value) < MinNormal<T>() ? T.Zero : value;

    /// <summary>The flush rule for a stored value of <typeparamref name="TFunction"/>: the rule as
    /// <see cref="IVec{TSelf, T}.FlushSubnormal"/> states it, by <see cref="FlushNonNegative"/> when
    /// the function's values are never negative.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static TVec Flush<TVec, T, TFunction>(TVec value)
        where TVec : struct, IVec<TVec, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
        where TFunction : struct, Kernels.IRowFunction<TVec, T> =>
        TFunction.IsNonNegative ? FlushNonNegative<TVec, T>(value) : TVec.FlushSubnormal(value);

    /// <summary>
    /// <see cref="IVec{TSelf, T}.FlushSubnormal"/> for lanes that are ≥ 0 or NaN: x &lt; FLT_MIN
    /// (DBL_MIN) becomes 0, which for such lanes is exactly |x| &lt; FLT_MIN (NaN compares false
    /// and stays). A compare and a blend.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec FlushNonNegative<TVec, T>(TVec value)
        where TVec : struct, IVec<TVec, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
        TVec.Select(TVec.LessThan(value, TVec.Create(MinNormal<T>())), TVec.Create(T.Zero), value);

    /// <summary><see cref="IVec{TSelf, T}.Transpose"/> one element at a time: the portable form.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe void TransposeLanes<TVec, T>(T* source, nint sourceStride, T* destination, nint destinationStride)
        where TVec : struct, IVec<TVec, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        for (nint i = 0; i < TVec.Count; i++)
        {
            for (nint j = 0; j < TVec.Count; j++)
            {
                destination[j * destinationStride + i] = source[i * sourceStride + j];
            }
        }
    }

    public const int SingleExponentBias = 127;
    public const int SingleMantissaBits = 23;
    public const long DoubleExponentBias = 1023;
    public const int DoubleMantissaBits = 52;

    // The bits IVec.Significand works with: the mantissa field, the bits of 1.0 and of 2^p (p the
    // mantissa bits), and 2^p + bias, which turns the exponent field read as 2^p + field into e.
    public const int SingleMantissaMask = 0x007FFFFF;
    public const int SingleOne = 0x3F800000;
    public const int SingleTwoToMantissaBits = 0x4B000000;
    public const float SingleExponentOffset = 8388608f + SingleExponentBias;
    public const long DoubleMantissaMask = 0x000FFFFFFFFFFFFF;
    public const long DoubleOne = 0x3FF0000000000000;
    public const long DoubleTwoToMantissaBits = 0x4330000000000000;
    public const double DoubleExponentOffset = 4503599627370496.0 + DoubleExponentBias;

    // float constants (bit patterns in comments).
    private const float Log2ESingle = 1.44269502f;          // 0x3FB8AA3B  log2(e)
    private const float ShifterSingle = 12582912f;          // 0x4B400000  1.5·2^23
    private const float Ln2HiSingle = 0.693359375f;         // 0x3F318000  ln2, upper 9 bits
    private const float Ln2LoSingle = -2.12194442e-4f;      // 0xB95E8083  ln2 − Ln2Hi
    private const float MinInputSingle = -87.3365402f;      // 0xC2AEAC4F, the float just above ln(2^−126) = −87.33654475
    private const float MaxInputSingle = 88.3762626f;       // 127.5·ln2

    // Degree 6, C1 = C0 = 1: C2…C6 minimise the relative error of 1 + r + r²·(C2 + C3·r + … + C6·r⁴)
    // against e^r on [−ln2/2, ln2/2] (a Lawson fit, then rounded to float): 3.8e-9 with the rounded
    // coefficients, against 5.2e-9 for the degree-7 Taylor series it replaces.
    private const float C2Single = 0.49999994f;             // 0x3EFFFFFE
    private const float C3Single = 0.16666521f;             // 0x3E2AAA49
    private const float C4Single = 0.041668389f;            // 0x3D2AAC79
    private const float C5Single = 0.0083687101f;           // 0x3C091CEA
    private const float C6Single = 0.0013814613f;           // 0x3AB51226

    // double constants.
    private const double Log2EDouble = 1.4426950408889634;            // 0x3FF71547652B82FE
    private const double ShifterDouble = 6755399441055744.0;          // 0x4338000000000000  1.5·2^52
    private const double Ln2HiDouble = 6.93147180369123816490e-01;    // 0x3FE62E42FEE00000
    private const double Ln2LoDouble = 1.90821492927058770002e-10;    // 0x3DEA39EF35793C76
    private const double MinInputDouble = -708.3964185322641;         // ln(2^−1022)
    private const double MaxInputDouble = 709.43613930310391;         // 1023.5·ln2

    // 1/k! for k = 2…13.
    private const double C2Double = 0.5;                              // 0x3FE0000000000000
    private const double C3Double = 0.16666666666666666;              // 0x3FC5555555555555
    private const double C4Double = 0.041666666666666664;             // 0x3FA5555555555555
    private const double C5Double = 0.008333333333333333;             // 0x3F81111111111111
    private const double C6Double = 0.001388888888888889;             // 0x3F56C16C16C16C17
    private const double C7Double = 0.0001984126984126984;            // 0x3F2A01A01A01A01A
    private const double C8Double = 2.48015873015873e-05;             // 0x3EFA01A01A01A01A
    private const double C9Double = 2.7557319223985893e-06;           // 0x3EC71DE3A556C734
    private const double C10Double = 2.755731922398589e-07;           // 0x3E927E4FB7789F5C
    private const double C11Double = 2.505210838544172e-08;           // 0x3E5AE64567F544E4
    private const double C12Double = 2.08767569878681e-09;            // 0x3E21EED8EFF8D898
    private const double C13Double = 1.6059043836821613e-10;          // 0x3DE6124613A86D09

    /// <summary>e^x lane-wise; see the class remarks for the method, error and special values.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Exp<TVec, T>(TVec x)
        where TVec : struct, IVec<TVec, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        TVec zero = TVec.Create(T.Zero);
        return typeof(T) == typeof(float) ? ExpSingle<TVec, T>(x, zero, true) : ExpDouble<TVec, T>(x, zero, true);
    }

    /// <summary>
    /// e^(a − b) lane-wise, exact in the subtraction: <see cref="ExpOfSum{TVec, T}"/> of a and 0 − b.
    /// The library calls it with b the row's maximum, so a − b ≤ 0; only a row holding a NaN can
    /// give more (the maximum of such a row is unspecified), and its sum, and so every output of
    /// the row, is NaN whatever this gives.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec ExpOfDifference<TVec, T>(TVec a, TVec b)
        where TVec : struct, IVec<TVec, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T> =>
        ExpOfSum<TVec, T>(a, TVec.Create(T.Zero) - b);

    /// <summary>
    /// e^(a + c) lane-wise, exact in the addition: d = a + c is rounded, and its rounding error
    /// (Knuth's TwoSum, five operations, valid for any magnitudes) is added to the reduced
    /// argument, so e^(a + c) = e^(d + error) ≈ p(r + error)·2^n. Without it, the relative error of
    /// the result would grow with |a + c| (|a + c|·2^−24 for float: 4e-6 at a + c = −65).
    /// Special values follow d as in <see cref="Exp{TVec, T}(TVec)"/>, except above the overflow
    /// threshold, where the result is unspecified (not +∞: the check costs a compare and a blend per
    /// vector). The row functions keep c = 0 − max (<see cref="Kernels.ExpShifted{TVec, T}"/>), so the
    /// negation is not redone for every vector.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec ExpOfSum<TVec, T>(TVec a, TVec c)
        where TVec : struct, IVec<TVec, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        TVec d = a + c;
        TVec aRounded = d - c;
        TVec cRounded = d - aRounded;
        TVec error = (a - aRounded) + (c - cRounded);
        return typeof(T) == typeof(float) ? ExpSingle<TVec, T>(d, error, false) : ExpDouble<TVec, T>(d, error, false);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec C<TVec, T>(float value)
        where TVec : struct, IVec<TVec, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T> => TVec.Create(T.CreateTruncating(value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec D<TVec, T>(double value)
        where TVec : struct, IVec<TVec, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T> => TVec.Create(T.CreateTruncating(value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec ExpSingle<TVec, T>(TVec x, TVec correction, bool checkOverflow)
        where TVec : struct, IVec<TVec, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        TVec shifter = C<TVec, T>(ShifterSingle);
        TVec shifted = TVec.MultiplyAdd(x, C<TVec, T>(Log2ESingle), shifter);
        TVec n = shifted - shifter;
        TVec r = TVec.MultiplyAdd(n, C<TVec, T>(-Ln2HiSingle), x);
        r = TVec.MultiplyAdd(n, C<TVec, T>(-Ln2LoSingle), r) + correction;

        TVec one = C<TVec, T>(1f);
        TVec p = TVec.MultiplyAdd(C<TVec, T>(C6Single), r, C<TVec, T>(C5Single));
        p = TVec.MultiplyAdd(p, r, C<TVec, T>(C4Single));
        p = TVec.MultiplyAdd(p, r, C<TVec, T>(C3Single));
        p = TVec.MultiplyAdd(p, r, C<TVec, T>(C2Single));
        p = TVec.MultiplyAdd(p, r, one);
        p = TVec.MultiplyAdd(p, r, one);

        TVec result = p * TVec.Pow2FromShifted(shifted);
        result = TVec.Select(TVec.LessThan(x, C<TVec, T>(MinInputSingle)), TVec.Create(T.Zero), result);
        return checkOverflow ? TVec.Select(TVec.LessThan(C<TVec, T>(MaxInputSingle), x), TVec.Create(T.PositiveInfinity), result) : result;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec ExpDouble<TVec, T>(TVec x, TVec correction, bool checkOverflow)
        where TVec : struct, IVec<TVec, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        TVec shifter = D<TVec, T>(ShifterDouble);
        TVec shifted = TVec.MultiplyAdd(x, D<TVec, T>(Log2EDouble), shifter);
        TVec n = shifted - shifter;
        TVec r = TVec.MultiplyAdd(n, D<TVec, T>(-Ln2HiDouble), x);
        r = TVec.MultiplyAdd(n, D<TVec, T>(-Ln2LoDouble), r) + correction;

        TVec one = D<TVec, T>(1.0);
        TVec p = TVec.MultiplyAdd(D<TVec, T>(C13Double), r, D<TVec, T>(C12Double));
        p = TVec.MultiplyAdd(p, r, D<TVec, T>(C11Double));
        p = TVec.MultiplyAdd(p, r, D<TVec, T>(C10Double));
        p = TVec.MultiplyAdd(p, r, D<TVec, T>(C9Double));
        p = TVec.MultiplyAdd(p, r, D<TVec, T>(C8Double));
        p = TVec.MultiplyAdd(p, r, D<TVec, T>(C7Double));
        p = TVec.MultiplyAdd(p, r, D<TVec, T>(C6Double));
        p = TVec.MultiplyAdd(p, r, D<TVec, T>(C5Double));
        p = TVec.MultiplyAdd(p, r, D<TVec, T>(C4Double));
        p = TVec.MultiplyAdd(p, r, D<TVec, T>(C3Double));
        p = TVec.MultiplyAdd(p, r, D<TVec, T>(C2Double));
        p = TVec.MultiplyAdd(p, r, one);
        p = TVec.MultiplyAdd(p, r, one);

        TVec result = p * TVec.Pow2FromShifted(shifted);
        result = TVec.Select(TVec.LessThan(x, D<TVec, T>(MinInputDouble)), TVec.Create(T.Zero), result);
        return checkOverflow ? TVec.Select(TVec.LessThan(D<TVec, T>(MaxInputDouble), x), TVec.Create(T.PositiveInfinity), result) : result;
    }
}
