using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace NativeSoftmax;

/// <summary>
/// Argument validation shared by the managed API (which throws) and the C exports (which return a
/// status): every check returns false and describes the failure instead of throwing.
/// </summary>
internal static unsafe class Checks
{
    /// <summary>
    /// The largest extent a matrix may span, 2^57 bytes: the virtual address space of a Linux
    /// process with five-level paging. Beyond it a shape cannot describe real memory, and the
    /// extent arithmetic (and any access) would overflow.
    /// </summary>
    public const long MaxBytes = 1L << 57;

    /// <summary>rows ≥ 0 and cols ≥ 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Shape(long rows, long cols, [NotNullWhen(false)] out Failure? failure)
    {
        if (rows < 0 || cols < 1)
        {
            failure = BadShape(rows, cols);
            return false;
        }
        failure = null; // a constant null: no write barrier on the path every call takes
        return true;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Failure BadShape(long rows, long cols) => rows < 0
        ? new(Status.InvalidShape, "rows", $"rows must be >= 0, got {rows}.")
        : new(Status.InvalidShape, "cols", $"cols (the number of classes) must be >= 1, got {cols}.");

    /// <summary>A [rows × cols] matrix with leading dimension ld: ld ≥ cols, and its extent
    /// (rows − 1)·ld + cols addressable.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Matrix(long rows, long cols, long ld, string ldName, int elementSize,
        [NotNullWhen(false)] out Failure? failure)
    {
        Debug.Assert(BitOperations.IsPow2(elementSize), "element sizes are 2, 4 or 8 bytes");
        long addressable = MaxBytes >> BitOperations.TrailingZeroCount(elementSize); // MaxBytes / elementSize without a division
        if (ld >= cols && cols <= addressable && (rows <= 1 || (rows - 1) <= (addressable - cols) / ld))
        {
            failure = null;
            return true;
        }
        failure = BadMatrix(rows, cols, ld, ldName);
        return false;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Failure BadMatrix(long rows, long cols, long ld, string ldName) => ld < cols
        ? new(Status.InvalidLeadingDimension, ldName, $"{ldName} ({ld}) must be >= cols ({cols}).")
        : new(Status.InvalidShape, "rows", $"a {rows} x {cols} matrix with {ldName} = {ld} is too large to address.");

    /// <summary>Elements spanned by a [rows × cols] matrix with leading dimension ld.</summary>
    public static long Extent(long rows, long cols, long ld) => rows == 0 ? 0 : (rows - 1) * ld + cols;

    /// <summary>
    /// An output may be exactly an input (same start, leading dimension and extent) when
    /// <paramref name="exactAllowed"/>, or disjoint from it; any other overlap is rejected.
    /// </summary>
    /// <remarks>The regions come by reference: copied by value, each 48-byte region cost a
    /// <c>rep movsq</c>, and those copies were most of a one-row cross-entropy call's time.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Disjoint(in Region output, in Region input, int elementSize, bool exactAllowed,
        [NotNullWhen(false)] out Failure? failure)
    {
        failure = null;
        if (output.Start == null || input.Start == null || output.Extent == 0 || input.Extent == 0)
        {
            return true;
        }
        if (exactAllowed && output.Start == input.Start && output.Ld == input.Ld && output.Extent == input.Extent)
        {
            return true;
        }
        nuint outStart = (nuint)output.Start, inStart = (nuint)input.Start;
        nuint outEnd = outStart + (nuint)(output.Extent * output.ElementSize(elementSize));
        nuint inEnd = inStart + (nuint)(input.Extent * input.ElementSize(elementSize));
        if (outStart < inEnd && inStart < outEnd)
        {
            failure = Overlap(output.Name, input.Name, exactAllowed);
            return false;
        }
        return true;
    }

    [MethodImpl(MethodImplOptions.NoInlining)] // the message is built only on failure, out of the checks' inlined path
    private static Failure Overlap(string output, string input, bool exactAllowed)
    {
        string allowed = exactAllowed
            ? "it may only be exactly that input (same pointer and leading dimension) or disjoint from it"
            : "they must not overlap";
        return new(Status.Overlap, output, $"{output} overlaps {input}; {allowed}.");
    }

    /// <summary>A pointer the operation always uses (the Jacobian's): never NULL.</summary>
    public static bool NotNull(void* pointer, string name, [NotNullWhen(false)] out Failure? failure)
    {
        if (pointer == null)
        {
            failure = new Failure(Status.NullPointer, name, $"{name} must not be NULL.");
            return false;
        }
        failure = null;
        return true;
    }

    /// <summary>A pointer to a matrix or vector of <paramref name="rows"/> rows: NULL only when
    /// rows == 0, since nothing is then read or written through it (torch.empty(0, C).data_ptr() is 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Required(void* pointer, long rows, string name, [NotNullWhen(false)] out Failure? failure)
    {
        if (pointer == null && rows > 0)
        {
            failure = MissingPointer(name, rows);
            return false;
        }
        failure = null;
        return true;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Failure MissingPointer(string name, long rows) =>
        new(Status.NullPointer, name, $"{name} must not be NULL when rows > 0 (rows = {rows}).");

    /// <summary>The most bytes of a caller's versioned struct (struct_size) the library reads.</summary>
    public const uint MaxStructBytes = 4096;

    /// <summary>
    /// A versioned struct of <paramref name="size"/> bytes (the caller's struct_size) of which this
    /// library knows the first <paramref name="knownSize"/>: a larger size (a newer header) is
    /// accepted only when every byte it adds is zero, i.e. the fields this library does not know
    /// are left at zero; otherwise the failure names the offset of the first byte that is not. A
    /// size above <see cref="MaxStructBytes"/> is rejected unread.
    /// </summary>
    public static bool UnknownBytesZero(byte* start, uint size, uint knownSize, string name, [NotNullWhen(false)] out Failure? failure)
    {
        failure = null;
        if (size > MaxStructBytes)
        {
            failure = new(Status.InvalidArgument, name,
                $"{name}->struct_size is {size}; no version of the struct is larger than {MaxStructBytes} bytes (the most this library reads).");
            return false;
        }
        for (uint offset = knownSize; offset < size; offset++)
        {
            if (start[offset] != 0)
            {
                failure = new(Status.InvalidArgument, name,
                    $"{name}->struct_size is {size}, but this library knows only its first {knownSize} bytes, and the byte at offset {offset} is not zero: "
                    + "a field of a newer header is set. Leave it at zero, or use a library that knows it.");
                return false;
            }
        }
        return true;
    }
}

/// <summary>
/// Memory an argument spans, for the overlap checks: <c>Extent</c> elements from <c>Start</c>;
/// <c>BytesPerElement</c> overrides the operation's element size (e.g. int64 labels), 0 meaning
/// "the operation's".
/// </summary>
internal readonly unsafe struct Region(void* start, long extent, long ld, string name, int bytesPerElement = 0)
{
    public void* Start { get; } = start;
    public long Extent { get; } = extent;
    public long Ld { get; } = ld;
    public string Name { get; } = name;

    public static Region Matrix(void* start, long rows, long cols, long ld, string name, int bytesPerElement = 0) =>
        new(start, Checks.Extent(rows, cols, ld), ld, name, bytesPerElement);

    public int ElementSize(int operationElementSize) => bytesPerElement == 0 ? operationElementSize : bytesPerElement;
}
