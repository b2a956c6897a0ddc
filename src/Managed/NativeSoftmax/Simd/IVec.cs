using System.Numerics;

namespace NativeSoftmax.Simd;

/// <summary>
/// One SIMD width for element type <typeparamref name="T"/> (float or double): the small set of
/// operations the row kernels are written in. Kernels take the width as a struct type parameter,
/// so the JIT and the AOT compiler specialise every kernel per width with no indirection.
/// </summary>
/// <remarks>
/// Implemented by <see cref="Vec128{T}"/>, <see cref="Vec256{T}"/>, <see cref="Vec512{T}"/> and
/// <see cref="VecScalar{T}"/> (one lane: the path for rows shorter than the narrowest vector).
/// A width the CPU lacks still computes correctly in software, which is how the tests exercise
/// every width on every machine.
/// </remarks>
internal interface IVec<TSelf, T>
    where TSelf : struct, IVec<TSelf, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    /// <summary>Lanes per vector.</summary>
    static abstract int Count { get; }

    /// <summary>True when this width runs on the CPU's own instructions.</summary>
    static abstract bool IsHardwareAccelerated { get; }

    static abstract TSelf Create(T value);
    static abstract unsafe TSelf Load(T* source);
    static abstract unsafe void Store(TSelf value, T* destination);

    /// <summary>A Count × Count block transposed (rows across lanes): <c>destination[j·destinationStride + i] =
    /// source[i·sourceStride + j]</c> for i, j &lt; Count. The blocks must not overlap. Shuffles in
    /// registers where the ISA has them; one element at a time otherwise (<see cref="VecMath.TransposeLanes"/>).</summary>
    static abstract unsafe void Transpose(T* source, nint sourceStride, T* destination, nint destinationStride);

    static abstract TSelf operator +(TSelf left, TSelf right);
    static abstract TSelf operator -(TSelf left, TSelf right);
    static abstract TSelf operator *(TSelf left, TSelf right);
    static abstract TSelf operator /(TSelf left, TSelf right);

    /// <summary><c>a·b + c</c>, fused where the CPU has FMA, otherwise a multiply and an add.</summary>
    static abstract TSelf MultiplyAdd(TSelf a, TSelf b, TSelf c);

    /// <summary>Lane-wise maximum with the CPU's native NaN rule (callers never rely on it).</summary>
    static abstract TSelf Max(TSelf left, TSelf right);

    /// <summary>All-ones lanes where <c>left &lt; right</c>, zero lanes elsewhere.</summary>
    static abstract TSelf LessThan(TSelf left, TSelf right);

    /// <summary>All-ones lanes where <c>left == right</c> (false for NaN).</summary>
    static abstract TSelf EqualTo(TSelf left, TSelf right);

    /// <summary>Lanes of <paramref name="ifTrue"/> where <paramref name="mask"/> is all-ones, else of <paramref name="ifFalse"/>;
    /// every lane of <paramref name="mask"/> must be all-ones or zero (a comparison's result, or a select of such): x86 blends on the sign bit alone.</summary>
    static abstract TSelf Select(TSelf mask, TSelf ifTrue, TSelf ifFalse);

    /// <summary>A mask whose lanes <c>firstLane … Count − 1</c> are all-ones and the others zero.</summary>
    static abstract TSelf LanesFrom(int firstLane);

    /// <summary>
    /// Lanes whose magnitude is below the smallest normal number (subnormals) become 0; the
    /// others, NaN and ±∞ included, are unchanged: the flush rule of every stored output
    /// (nativesoftmax.h, "Numerics"). An absolute value, a compare and an and-not.
    /// </summary>
    static abstract TSelf FlushSubnormal(TSelf value);

    /// <summary>
    /// 2^n from <c>shifted = n + RoundingShifter</c>, where n is an integer in the normal exponent
    /// range: builds the IEEE exponent field directly from the low bits of <paramref name="shifted"/>.
    /// See <see cref="VecMath"/> for the trick.
    /// </summary>
    static abstract TSelf Pow2FromShifted(TSelf shifted);

    /// <summary>
    /// For lanes that are positive normal numbers x = m·2^e with m in [1, 2): m, and e (an integer,
    /// as a <typeparamref name="T"/>) in <paramref name="exponent"/>, both exact, read from the bits
    /// (the exponent field as the low bits of 2^p's mantissa, p the mantissa bits). Other lanes:
    /// unspecified. The first step of <see cref="VecLog"/>.
    /// </summary>
    static abstract TSelf Significand(TSelf value, out TSelf exponent);

    /// <summary>How many lanes of <paramref name="mask"/> are all-ones (a comparison's result, as for
    /// <see cref="Select"/>): a sign-bit mask and a population count, where summing 1s would take a
    /// lane reduction.</summary>
    static abstract int CountTrue(TSelf mask);

    /// <summary>Sum of the lanes.</summary>
    static abstract T SumLanes(TSelf value);

    /// <summary>Maximum of the lanes.</summary>
    static abstract T MaxLanes(TSelf value);
}
