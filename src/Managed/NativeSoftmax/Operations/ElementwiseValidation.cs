using System.Diagnostics.CodeAnalysis;

namespace NativeSoftmax.Operations;

/// <summary>The checks of the row-to-row operations (forward and backward passes).</summary>
internal static unsafe class ElementwiseValidation
{
    /// <summary>
    /// Shape, then for each input and the output: not NULL (unless there are no rows) and a valid
    /// leading dimension; then the output is exactly each input (in place) or disjoint from it.
    /// </summary>
    public static bool Check(long rows, long cols, int elementSize,
        ReadOnlySpan<MatrixArgument> inputs, MatrixArgument output, [NotNullWhen(false)] out Failure? failure)
    {
        if (!Checks.Shape(rows, cols, out failure))
        {
            return false;
        }
        foreach (MatrixArgument input in inputs)
        {
            if (!Checks.Required(input.Start, rows, input.Name, out failure)
                || !Checks.Matrix(rows, cols, input.Ld, input.LdName, elementSize, out failure))
            {
                return false;
            }
        }
        if (!Checks.Required(output.Start, rows, output.Name, out failure)
            || !Checks.Matrix(rows, cols, output.Ld, output.LdName, elementSize, out failure))
        {
            return false;
        }
        foreach (MatrixArgument input in inputs)
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
