using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Kernels;

/// <summary>
/// Rows across lanes: W = <c>TVec.Count</c> consecutive rows of W ≤ n ≤ 4·W elements
/// (<see cref="Fits"/>) staged transposed into a tile of n vectors, lane i of
/// vector j holding element j of row i. A row function applied at the tile offsets j·W then
/// computes element j of all W rows at once, and every per-row quantity (max, Σ exp, scale,
/// log Σ) is one lane of a vector: no lane reductions, one exponential per W elements. The loops
/// mirror <see cref="IRowLoop{TVec, T}"/>'s with a per-lane result where those give a per-row scalar.
/// </summary>
/// <remarks>
/// The tile is the caller's per-thread scratch (<see cref="MaxElements"/> elements,
/// <see cref="Operations.ThreadScratch.Tiles{T}"/>), not the stack: at 512 bits a float32 tile is
/// 4 KiB, and a thread of 16 KiB, which the header allows, had too little left. Every store of
/// <see cref="Store"/> goes through the flush rule as in the row loops. A lane's sums take the
/// even and the odd columns apart, each a sum in the working precision of at most 2·W values
/// (16 at 8 lanes; a block of <see cref="RowLoop{TVec, T}"/> adds 8 per partial sum), then the
/// two together, widened to float64 for the per-lane scale and log.
/// </remarks>
internal static unsafe class LaneTile<TVec, T>
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    /// <summary>The longest row a tile holds: 4·W columns (32 float32 classes at 8 lanes).</summary>
    public static nuint MaxColumns => 4 * (nuint)TVec.Count;

    /// <summary>Elements of the largest tile: <see cref="MaxColumns"/> vectors of W lanes.</summary>
    public static int MaxElements => 4 * TVec.Count * TVec.Count;

    /// <summary>Elements of T in the per-lane values of <paramref name="slots"/> slots of W lanes,
    /// rounded up to even, so that float64 values stored after them are 8-byte aligned.</summary>
    public static int LaneValuesLength(int slots) => (slots * TVec.Count + 1) & ~1;

    /// <summary>Elements of T in cross-entropy's group scratch: two tiles, then the per-lane values
    /// of T (<see cref="LaneValuesLength"/>), then as many float64 ones.</summary>
    public static int CrossEntropyScratchElements(int slots) =>
        2 * MaxElements + LaneValuesLength(slots) + slots * TVec.Count * sizeof(double) / sizeof(T);

    /// <summary>Whether rows of n ≥ W elements (the dispatch gives shorter rows to a narrower width)
    /// go across lanes: n ≤ <see cref="MaxColumns"/>.</summary>
    public static bool Fits(nuint n) => n <= MaxColumns;

    /// <summary><c>tile[j·W + i] = rows[i·ld + j]</c> for the W rows and j &lt; n, W ≤ n ≤ 4·W: the
    /// rows' columns W at a time, each block transposed into W vectors of the tile, the last block
    /// ending at n (overlapping the one before where W does not divide n: the columns both cover
    /// are written twice, the same values).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void FromRows(T* rows, long ld, nuint n, T* tile)
    {
        nint width = TVec.Count, end = (nint)n;
        for (nint j = 0; j + width <= end; j += width)
        {
            TVec.Transpose(rows + j, (nint)ld, tile + j * width, width);
        }
        if (end % width != 0)
        {
            TVec.Transpose(rows + (end - width), (nint)ld, tile + (end - width) * width, width);
        }
    }

    /// <summary><c>rows[i·ld + j] = tile[j·W + i]</c>, the inverse of <see cref="FromRows"/>, by the
    /// same blocks (the same values where they overlap), as <see cref="RowLoop{TVec, T}"/> stores a
    /// row's last vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ToRows(T* tile, nuint n, T* rows, long ld)
    {
        nint width = TVec.Count, end = (nint)n;
        for (nint j = 0; j + width <= end; j += width)
        {
            TVec.Transpose(tile + j * width, width, rows + j, (nint)ld);
        }
        if (end % width != 0)
        {
            TVec.Transpose(tile + (end - width) * width, width, rows + (end - width), (nint)ld);
        }
    }

    /// <summary>Matrices of at least this many bytes (of the rows a group reads) have the group after
    /// next prefetched (<see cref="Prefetch"/>): measured on the AMD EPYC build machine (avx2, 32
    /// float32 classes), 19–23 % faster from 4 MiB up, no gain or a few percent slower below (2.6 MiB
    /// of 10 classes: 2–4 % slower).</summary>
    public const long PrefetchFromBytes = 4L << 20;

    /// <summary>Asks the cache for the W rows of n elements at <paramref name="rows"/> (x86 PREFETCHT0
    /// per 64-byte line; nothing elsewhere). A hint: it never faults and changes no result. The
    /// callers pass only rows inside their matrix.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Prefetch(T* rows, long ld, nuint n)
    {
        if (!Sse.IsSupported)
        {
            return;
        }
        nuint bytes = n * (nuint)sizeof(T);
        for (nint i = 0; i < TVec.Count; i++)
        {
            byte* row = (byte*)(rows + i * (nint)ld);
            for (nuint b = 0; b < bytes; b += 64)
            {
                Sse.Prefetch0(row + b);
            }
        }
    }

    /// <summary><c>tile[j·W + i] = values[j]</c> for every lane: a row (the class weights) broadcast across lanes,
    /// so that a row function reads it at the tile offsets as the per-row path reads the row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Broadcast(T* values, nuint n, T* tile)
    {
        nuint width = (nuint)TVec.Count;
        for (nuint j = 0; j < n; j++)
        {
            TVec.Store(TVec.Create(values[j]), tile + j * width);
        }
    }

    /// <summary>Each row's Σ f over its n elements, in its lane, in the working precision: two partial
    /// sums taking the columns in turn (the even ones and the odd ones), then added.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Sum<TFunction>(TFunction f, nuint n)
        where TFunction : struct, IRowFunction<TVec, T>
    {
        nuint width = (nuint)TVec.Count;
        TVec current = TVec.Create(T.Zero), other = current;
        for (nuint j = 0; j < n; j++)
        {
            TVec next = current + f.Apply(j * width);
            current = other;
            other = next;
        }
        return current + other;
    }

    /// <summary>Each row's maximum, in its lane (NaN handling as <see cref="IRowLoop{TVec, T}.Max"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Max(T* tile, nuint n)
    {
        nuint width = (nuint)TVec.Count;
        TVec max = TVec.Load(tile);
        for (nuint j = 1; j < n; j++)
        {
            max = TVec.Max(max, TVec.Load(tile + j * width));
        }
        return max;
    }

    /// <summary><c>tile[j·W …] = f(j·W)</c>, flushed, for every j &lt; n; f may read the tile (each
    /// vector is read before it is written).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store<TFunction>(TFunction f, T* tile, nuint n)
        where TFunction : struct, IRowFunction<TVec, T>
    {
        nuint width = (nuint)TVec.Count;
        for (nuint j = 0; j < n; j++)
        {
            TVec.Store(VecMath.Flush<TVec, T, TFunction>(f.Apply(j * width)), tile + j * width);
        }
    }

    /// <summary>Each row's Σ exp, split as <see cref="ExpSum"/> (the 1s counted apart from the others),
    /// for a function whose values are exponentials exp(z − max); when <paramref name="storeTo"/> is not
    /// null, the exponentials are also stored there (it may be the tile f reads).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LaneExpSums<TVec, T> SumExps<TFunction>(TFunction f, T* storeTo, nuint n)
        where TFunction : struct, IRowFunction<TVec, T>
    {
        nuint width = (nuint)TVec.Count;
        TVec zero = TVec.Create(T.Zero), one = TVec.Create(T.One);
        TVec others = zero, otherOthers = zero, atMax = zero; // two partial sums taking the columns in turn, as Sum
        for (nuint j = 0; j < n; j++)
        {
            TVec value = f.Apply(j * width);
            if (storeTo != null)
            {
                TVec.Store(value, storeTo + j * width);
            }
            TVec isOne = TVec.EqualTo(value, one);
            TVec next = others + TVec.Select(isOne, zero, value);
            others = otherOthers;
            otherOthers = next;
            atMax += TVec.Select(isOne, one, zero);
        }
        others += otherOthers;
        return new LaneExpSums<TVec, T>(others, atMax);
    }
}

/// <summary>The <see cref="ExpSum"/> of each lane's row, as two vectors: the sum of the exponentials
/// below 1 and the count of those exactly 1.</summary>
internal readonly struct LaneExpSums<TVec, T>(TVec others, TVec atMax)
    where TVec : struct, IVec<TVec, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    /// <summary>Σ of the exponentials below 1, per lane.</summary>
    public TVec Others => others;

    /// <summary>How many exponentials are exactly 1, per lane.</summary>
    public TVec AtMax => atMax;

    /// <summary>Slots (of Count values each) <see cref="StoreStatistics"/> fills: the rows' maxima,
    /// <see cref="Others"/>, <see cref="AtMax"/> and the smoothing gaps, in this order.</summary>
    public const int MaxSlot = 0, OthersSlot = 1, AtMaxSlot = 2, GapsSlot = 3;

    /// <summary>The per-row statistics a cross-entropy's per-lane scalars start from, into the first
    /// four slots at <paramref name="lanes"/> (<see cref="MaxSlot"/> … <see cref="GapsSlot"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe void StoreStatistics(TVec max, TVec gaps, T* lanes)
    {
        int width = TVec.Count;
        TVec.Store(max, lanes + MaxSlot * width);
        TVec.Store(others, lanes + OthersSlot * width);
        TVec.Store(atMax, lanes + AtMaxSlot * width);
        TVec.Store(gaps, lanes + GapsSlot * width);
    }

    // The per-lane float64 steps below widen whole vectors of lanes (LaneWidening says why).
    // Sharing one evaluator among the three methods gave back 0–7 % of softmax and log_softmax.

    /// <summary>1/S per lane, rounded to T: the softmax scale, as the row path's <c>1.0 / sum.Total</c>.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // once per W rows; compiled apart, it leaves the kernel its inlining budget
    public unsafe TVec Reciprocals()
    {
        double* wide = stackalloc double[TVec.Count];
        Evaluate<Reciprocal>(wide);
        return LaneWidening<TVec, T>.Narrowed(wide);
    }

    /// <summary>log S per lane (<see cref="ExpSum.Log"/>, by <see cref="VecLog"/> on several lanes at
    /// once) in float64, into <paramref name="destination"/> (Count values).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public unsafe void Logs(double* destination) => Evaluate<LogOfSum>(destination);

    /// <summary>log S per lane, rounded to T (as <see cref="Logs(double*)"/>).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public unsafe TVec Logs()
    {
        double* wide = stackalloc double[TVec.Count];
        Evaluate<LogOfSum>(wide);
        return LaneWidening<TVec, T>.Narrowed(wide);
    }

    /// <summary>A per-lane float64 function of a row's <see cref="ExpSum"/>: on one lane, and on
    /// float64 vectors of any width.</summary>
    private interface ILaneFormula
    {
        static abstract double Of(ExpSum sum);

        static abstract TD Of<TD>(TD others, TD atMax)
            where TD : struct, IVec<TD, double>;
    }

    /// <summary>1/S.</summary>
    private readonly struct Reciprocal : ILaneFormula
    {
        public static double Of(ExpSum sum) => 1.0 / sum.Total;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TD Of<TD>(TD others, TD atMax)
            where TD : struct, IVec<TD, double> => TD.Create(1.0) / (others + atMax);
    }

    /// <summary>log S = log1p(others + (atMax − 1)), as <see cref="ExpSum.Log"/>.</summary>
    private readonly struct LogOfSum : ILaneFormula
    {
        public static double Of(ExpSum sum) => sum.Log;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TD Of<TD>(TD others, TD atMax)
            where TD : struct, IVec<TD, double> => VecLog.LogOnePlus(others + (atMax - TD.Create(1.0)));
    }

    /// <summary><typeparamref name="TFormula"/> of every lane's sum, in float64, into
    /// <paramref name="destination"/> (Count values).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private unsafe void Evaluate<TFormula>(double* destination)
        where TFormula : struct, ILaneFormula
    {
        TVec o = others, a = atMax;
        ref T oLanes = ref Unsafe.As<TVec, T>(ref o);
        ref T aLanes = ref Unsafe.As<TVec, T>(ref a);
        if (TVec.Count == 1)
        {
            *destination = TFormula.Of(Lane(ref oLanes, ref aLanes, 0));
        }
        else if (LaneWidening<TVec, T>.FourLanes)
        {
            EvaluateAt<TFormula, Vec256<double>>(ref oLanes, ref aLanes, destination);
        }
        else
        {
            EvaluateAt<TFormula, Vec128<double>>(ref oLanes, ref aLanes, destination);
        }
    }

    /// <summary><see cref="Evaluate"/> <typeparamref name="TD"/>.Count lanes at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void EvaluateAt<TFormula, TD>(ref T others, ref T atMax, double* destination)
        where TFormula : struct, ILaneFormula
        where TD : struct, IVec<TD, double>
    {
        if (typeof(T) == typeof(double))
        {
            for (int i = 0; i < TVec.Count; i += TD.Count)
            {
                TD.Store(TFormula.Of(LaneWidening<TVec, T>.Wide<TD>(ref others, i), LaneWidening<TVec, T>.Wide<TD>(ref atMax, i)), destination + i);
            }
            return;
        }
        for (int i = 0; i < TVec.Count; i += 2 * TD.Count)
        {
            (TD oLow, TD oHigh) = LaneWidening<TVec, T>.Widened<TD>(ref Unsafe.As<T, float>(ref others), i);
            (TD aLow, TD aHigh) = LaneWidening<TVec, T>.Widened<TD>(ref Unsafe.As<T, float>(ref atMax), i);
            TD.Store(TFormula.Of(oLow, aLow), destination + i);
            TD.Store(TFormula.Of(oHigh, aHigh), destination + i + TD.Count);
        }
    }

    /// <summary>Lane i's row as an <see cref="ExpSum"/>, widened to float64 (a TVec is its lanes in order).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ExpSum Lane(ref T others, ref T atMax, int i) =>
        new(double.CreateTruncating(Unsafe.Add(ref others, i)), double.CreateTruncating(Unsafe.Add(ref atMax, i)));
}
