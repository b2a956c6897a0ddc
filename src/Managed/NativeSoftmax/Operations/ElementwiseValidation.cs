using System.Diagnostics.CodeAnalysis;

namespace NativeSoftmax.Operations;

/// <summary>The checks shared by the row-to-row operations (forward and backward passes).</summary>
internal static unsafe class ElementwiseValidation
{
    /// <summary>
    /// Shape, then for each input and the output: not NULL and a valid leading dimension; then the
    /// output is exactly each input (in place) or disjoint from it.
    /// </summary>
    public static bool Check(long rows, long cols, int elementSize,
        ReadOnlySpan<Region> inputs, Region output, [NotNullWhen(false)] out Failure? failure)
    {
        if (!Checks.Shape(rows, cols, out failure))
        {
            return false;
        }
        foreach (Region input in inputs)
        {
            if (!Checks.NotNull(input.Start, input.Name, out failure)
                || !Checks.Matrix(rows, cols, input.Ld, "ld_" + input.Name, elementSize, out failure))
            {
                return false;
            }
        }
        if (!Checks.NotNull(output.Start, output.Name, out failure)
            || !Checks.Matrix(rows, cols, output.Ld, "ld_" + output.Name, elementSize, out failure))
        {
            return false;
        }
        foreach (Region input in inputs)
        {
            Region spanned = Region.Matrix(input.Start, rows, cols, input.Ld, input.Name);
            Region written = Region.Matrix(output.Start, rows, cols, output.Ld, output.Name);
            if (!Checks.Disjoint(written, spanned, elementSize, exactAllowed: true, out failure))
            {
                return false;
            }
        }
        return true;
    }
}
