using System.Numerics;
using NativeSoftmax.Operations;

namespace NativeSoftmax;

/// <summary>
/// Softmax, log-softmax, their backward passes, the softmax Jacobian and the fused softmax
/// cross-entropy over row-major <c>[rows × cols]</c> matrices of <see cref="float"/> or
/// <see cref="double"/>, one softmax per row, vectorised for the CPU at hand (AVX-512, AVX2,
/// SSE/NEON 128-bit).
/// </summary>
/// <remarks>
/// <para>Source: the derivation "Gradient of the Softmax Function with Cross-Entropy Loss"
/// (shared/seed/softmax-cross-entropy-gradient.md): o_j = e^{z_j}/Σ_k e^{z_k},
/// ∂o_i/∂z_i = o_i − o_i², ∂o_j/∂z_i = −o_j·o_i, and ∂E/∂z_i = o_i·Σ_j y_j − y_i.</para>
/// <para>Conventions shared by every method: a matrix is given by a span, its row count, column
/// count and leading dimension (the distance between row starts, ≥ cols); element (r, c) is at
/// <c>r·ld + c</c>, and the span must hold at least <c>(rows − 1)·ld + cols</c> elements. An
/// output may be exactly its input (same memory, same leading dimension) where a method says so;
/// any other overlap throws. Invalid arguments throw before anything is written:
/// <see cref="ArgumentOutOfRangeException"/> for shapes, leading dimensions and labels,
/// <see cref="ArgumentException"/> for options, overlaps and short spans,
/// <see cref="NotSupportedException"/> for an element type other than float or double.</para>
/// <para>Numerics: rows are shifted by their maximum before exponentiation, so no finite logit
/// overflows; the shift z − max is exact, and the exponential is a vectorised approximation within 1.2 ulp; results below the
/// smallest normal number flush to 0. A row that is all −∞, contains +∞ or contains NaN gives NaN
/// outputs (as PyTorch). Methods are thread-safe on disjoint outputs and allocate nothing.</para>
/// </remarks>
public static partial class SoftmaxPrimitives
{
    /// <summary>
    /// The instruction-set path the kernels run on: "avx512", "avx2", "sse4.2" or "neon" (the
    /// names of the C ABI's nsm_isa()), or "scalar" when the runtime accelerates no vector width.
    /// "scalar" is this managed API's name only: the native library never runs without a vector
    /// path.
    /// </summary>
    public static string InstructionSet => Dispatch.Isa ?? "scalar";

    private static void Execute<TOperation, T>(ref TOperation operation)
        where TOperation : struct, IRowOperation<T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (!operation.Prepare(out Failure? failure))
        {
            throw failure.Value.ToException();
        }
        Dispatch.Run<TOperation, T>(ref operation);
    }

    private static void RequireFloatOrDouble<T>()
    {
        if (typeof(T) != typeof(float) && typeof(T) != typeof(double))
        {
            throw new NotSupportedException($"NativeSoftmax computes in float or double, not {typeof(T).Name}.");
        }
    }

    private static void RequireLength(int length, long rows, long cols, long ld, string name)
    {
        if (!Checks.Shape(rows, cols, out Failure? failure))
        {
            throw failure.Value.ToException();
        }
        long needed = Checks.Extent(rows, cols, ld);
        if (ld >= cols && length < needed)
        {
            throw new ArgumentException(
                $"{name} has {length} elements; a {rows} x {cols} matrix with leading dimension {ld} needs {needed}.", CamelCase(name));
        }
    }

    /// <summary>The single-row overloads: a non-empty row, and a destination at least as long.</summary>
    private static void RequireRow<T>(ReadOnlySpan<T> logits, int destinationLength, string destinationName)
    {
        if (logits.IsEmpty)
        {
            throw new ArgumentException("logits is empty: a row needs at least one class.", nameof(logits));
        }
        if (destinationLength < logits.Length)
        {
            throw new ArgumentException($"{destinationName} has {destinationLength} elements for a row of {logits.Length}.", destinationName);
        }
    }

    /// <summary>
    /// <c>fixed</c> gives a null pointer for an empty span, which the operations reject (as the C ABI
    /// does for NULL). In the managed API an empty span is a valid empty matrix (rows == 0), so it
    /// points at a scratch element instead; its extent is 0, so nothing reads or writes it.
    /// </summary>
    private static unsafe TElement* EmptyAsScratch<TElement>(TElement* pinned, TElement* scratch)
        where TElement : unmanaged => pinned != null ? pinned : scratch;

    private static string CamelCase(string snake) => Failure.CamelCase(snake);
}
