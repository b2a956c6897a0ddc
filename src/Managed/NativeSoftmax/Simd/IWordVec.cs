using System.Runtime.CompilerServices;

namespace NativeSoftmax.Simd;

/// <summary>
/// One width of 32-bit integer lanes, the small set of operations the half-precision conversions
/// (<see cref="HalfConversion{TFormat}"/>) are written in, once for every width: the same idea as
/// <see cref="IVec{TSelf, T}"/> for the kernels. A lane holds either a float32's bits or a 16-bit
/// half's bits in its low half.
/// </summary>
/// <remarks>
/// Implemented by <see cref="Words128"/>, <see cref="Words256"/>, <see cref="Words512"/> (each
/// converting two vectors of lanes, <see cref="Step"/> halves, per load) and
/// <see cref="WordScalar"/> (one element: rows shorter than a step). A width the CPU lacks still
/// computes in software, so tests reach every width on any machine. .NET 10 exposes no F16C,
/// AVX-512 BF16 or NEON half-conversion intrinsics, so every width converts by exact integer
/// arithmetic (and one float addition or subtraction, exact where it is used).
/// </remarks>
internal interface IWordVec<TSelf>
    where TSelf : struct, IWordVec<TSelf>
{
    /// <summary>Halves converted per load or store: twice the lanes (1 for <see cref="WordScalar"/>).</summary>
    static abstract int Step { get; }

    static abstract TSelf Create(uint value);

    /// <summary><see cref="Step"/> 16-bit values, zero-extended into the lanes of two vectors.</summary>
    static abstract unsafe void LoadWidening(ushort* source, out TSelf lower, out TSelf upper);

    /// <summary>Every lane of both vectors as a 16-bit value, <see cref="Step"/> values. Each lane
    /// must be below 2^16 (narrowed values are): x86 packs with unsigned saturation.</summary>
    static abstract unsafe void StoreNarrowing(TSelf lower, TSelf upper, ushort* destination);

    /// <summary>The bits of <see cref="Step"/> float32s, as two vectors.</summary>
    static abstract unsafe void LoadSingles(float* source, out TSelf lower, out TSelf upper);

    /// <summary>Two vectors of float32 bits stored as <see cref="Step"/> float32s.</summary>
    static abstract unsafe void StoreSingles(TSelf lower, TSelf upper, float* destination);

    static abstract TSelf operator &(TSelf left, TSelf right);
    static abstract TSelf operator |(TSelf left, TSelf right);
    static abstract TSelf operator +(TSelf left, TSelf right);
    static abstract TSelf operator -(TSelf left, TSelf right);
    static abstract TSelf operator <<(TSelf value, int count);

    /// <summary>Logical (unsigned) shift right.</summary>
    static abstract TSelf operator >>>(TSelf value, int count);

    /// <summary>All-ones lanes where <c>left &gt; right</c> as signed 32-bit integers: one compare
    /// instruction on x86, which has no unsigned one below AVX-512. The formats compare magnitudes
    /// (sign bit clear) with constants below 2^31, where that is the unsigned order too.</summary>
    static abstract TSelf GreaterThan(TSelf left, TSelf right);

    /// <summary>All-ones lanes where <c>left == right</c>.</summary>
    static abstract TSelf EqualTo(TSelf left, TSelf right);

    /// <summary>Lanes of <paramref name="ifTrue"/> where <paramref name="mask"/> is all-ones, else of
    /// <paramref name="ifFalse"/>. Every mask lane is all-ones or zero (a comparison's result): x86
    /// blends by bytes.</summary>
    static abstract TSelf Select(TSelf mask, TSelf ifTrue, TSelf ifFalse);

    /// <summary>The lanes read as float32, added in float32 (round to nearest even), as bits.</summary>
    static abstract TSelf AddSingles(TSelf left, TSelf right);

    /// <summary>The lanes read as float32, subtracted in float32, as bits.</summary>
    static abstract TSelf SubtractSingles(TSelf left, TSelf right);
}
