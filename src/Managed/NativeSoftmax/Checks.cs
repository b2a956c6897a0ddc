using System.Diagnostics.CodeAnalysis;

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
    public static bool Shape(long rows, long cols, [NotNullWhen(false)] out Failure? failure)
    {
        if (rows < 0)
        {
            failure = new(Status.InvalidShape, "rows", $"rows must be >= 0, got {rows}.");
            return false;
        }
        if (cols < 1)
        {
            failure = new(Status.InvalidShape, "cols", $"cols (the number of classes) must be >= 1, got {cols}.");
            return false;
        }
        failure = null;
        return true;
    }

    /// <summary>A [rows × cols] matrix with leading dimension ld: ld ≥ cols, and its extent
    /// (rows − 1)·ld + cols addressable.</summary>
    public static bool Matrix(long rows, long cols, long ld, string ldName, int elementSize,
        [NotNullWhen(false)] out Failure? failure)
    {
        if (ld < cols)
        {
            failure = new(Status.InvalidLeadingDimension, ldName, $"{ldName} ({ld}) must be >= cols ({cols}).");
            return false;
        }
        long addressable = MaxBytes / elementSize;
        if (cols > addressable || (rows > 1 && (rows - 1) > (addressable - cols) / ld))
        {
            failure = new(Status.InvalidShape, "rows", $"a {rows} x {cols} matrix with {ldName} = {ld} is too large to address.");
            return false;
        }
        failure = null;
        return true;
    }

    /// <summary>Elements spanned by a [rows × cols] matrix with leading dimension ld.</summary>
    public static long Extent(long rows, long cols, long ld) => rows == 0 ? 0 : (rows - 1) * ld + cols;

    /// <summary>
    /// An output may be exactly an input (same start, leading dimension and extent) when
    /// <paramref name="exactAllowed"/>, or disjoint from it; any other overlap is rejected.
    /// </summary>
    public static bool Disjoint(Region output, Region input, int elementSize, bool exactAllowed,
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
            string allowed = exactAllowed
                ? "it may only be exactly that input (same pointer and leading dimension) or disjoint from it"
                : "they must not overlap";
            failure = new(Status.Overlap, output.Name, $"{output.Name} overlaps {input.Name}; {allowed}.");
            return false;
        }
        return true;
    }

    /// <summary>A required pointer.</summary>
    public static bool NotNull(void* pointer, string name, [NotNullWhen(false)] out Failure? failure)
    {
        failure = pointer == null ? new Failure(Status.NullPointer, name, $"{name} must not be NULL.") : null;
        return failure is null;
    }

    /// <summary>A span holds at least the extent of its matrix (managed API only).</summary>
    public static bool Length(int length, long rows, long cols, long ld, string name, [NotNullWhen(false)] out Failure? failure)
    {
        long needed = Extent(rows, cols, ld);
        failure = length < needed
            ? new Failure(Status.InvalidShape, name, $"{name} has {length} elements; a {rows} x {cols} matrix with leading dimension {ld} needs {needed}.")
            : null;
        return failure is null;
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

    public static Region Matrix(void* start, long rows, long cols, long ld, string name) =>
        new(start, Checks.Extent(rows, cols, ld), ld, name);

    public int ElementSize(int operationElementSize) => bytesPerElement == 0 ? operationElementSize : bytesPerElement;
}
