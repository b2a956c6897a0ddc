using System.Diagnostics.CodeAnalysis;

namespace NativeSoftmax.Operations;

/// <summary>
/// merged[r] = a[r] ⊕ b[r] (<see cref="CrossEntropyStats.Merge"/>) for every row, on the calling
/// thread (seven float64 values a row). merged may be exactly a or exactly b.
/// </summary>
internal readonly unsafe struct CrossEntropyMergeOperation(long rows, CrossEntropyStats* a, CrossEntropyStats* b,
    CrossEntropyStats* merged)
{
    /// <summary>Checks the arguments; writes nothing.</summary>
    public bool Check([NotNullWhen(false)] out Failure? failure)
    {
        if (rows < 0)
        {
            failure = new(Status.InvalidShape, "rows", $"rows must be >= 0, got {rows}.");
            return false;
        }
        if (rows > Checks.MaxBytes / sizeof(CrossEntropyStats))
        {
            failure = new(Status.InvalidShape, "rows", $"{rows} rows of statistics are too large to address.");
            return false;
        }
        if (!Checks.Required(a, rows, "a", out failure)
            || !Checks.Required(b, rows, "b", out failure)
            || !Checks.Required(merged, rows, "merged", out failure))
        {
            return false;
        }
        int size = sizeof(CrossEntropyStats);
        var mergedRegion = new Region(merged, rows, rows, "merged", size);
        return Checks.Disjoint(mergedRegion, new Region(a, rows, rows, "a", size), size, exactAllowed: true, out failure)
            && Checks.Disjoint(mergedRegion, new Region(b, rows, rows, "b", size), size, exactAllowed: true, out failure);
    }

    /// <summary>Merges every row (after <see cref="Check"/>).</summary>
    public void Run()
    {
        for (long r = 0; r < rows; r++)
        {
            merged[r] = CrossEntropyStats.Merge(a[r], b[r]);
        }
    }
}
