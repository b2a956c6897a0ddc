using System.Numerics;
using NativeSoftmax.Kernels;
using NativeSoftmax.Operations;

namespace NativeSoftmax;

/// <summary>
/// Softmax, log-softmax, their backward passes, the softmax Jacobian and the fused softmax
/// cross-entropy over row-major <c>[rows × cols]</c> matrices of <see cref="float"/>,
/// <see cref="double"/> or <see cref="Half"/>, one softmax per row, vectorised for the CPU at hand
/// (AVX-512, AVX2, SSE/NEON 128-bit).
/// </summary>
/// <remarks>
/// <para>Source: the derivation "Gradient of the Softmax Function with Cross-Entropy Loss"
/// (docs/derivation.md): o_j = e^{z_j}/Σ_k e^{z_k},
/// ∂o_i/∂z_i = o_i − o_i², ∂o_j/∂z_i = −o_j·o_i, and ∂E/∂z_i = o_i·Σ_j y_j − y_i.</para>
/// <para>Conventions shared by every method: a matrix is given by a span, its row count, column
/// count and leading dimension (the distance between row starts, ≥ cols); element (r, c) is at
/// <c>r·ld + c</c>, and the span must hold at least <c>(rows − 1)·ld + cols</c> elements. An
/// output may be exactly its input (same memory, same leading dimension) where a method says so;
/// any other overlap throws. Invalid arguments throw before anything is written:
/// <see cref="ArgumentOutOfRangeException"/> for shapes, leading dimensions and labels,
/// <see cref="ArgumentException"/> for options, overlaps and short spans,
/// <see cref="NotSupportedException"/> for an element type other than float, double or Half.</para>
/// <para>Half (and <see cref="BFloat16"/>, through overloads of its own) is computed in float:
/// each block of rows is widened to float (exactly) into per-thread scratch, the float operation
/// runs, and each result is rounded to the nearest 16-bit value once (ties to even). A 16-bit
/// result is within the float32 accuracy stated for the method plus one ulp of its type of the
/// exact value; a result below the type's smallest normal number is stored as 0.</para>
/// <para>Numerics: rows are shifted by their maximum before exponentiation, so no finite logit
/// overflows; the shift z − max is exact, and the exponential is a vectorised approximation
/// within 1.25 ulp. When one class dominates, its log-probability, loss, gradient and Jacobian
/// diagonal keep a few ulp of relative accuracy. Every output whose magnitude is below the
/// smallest normal number is stored as 0 (none is subnormal). A row that is all −∞, contains +∞ or
/// contains NaN gives NaN outputs (as PyTorch). Methods are thread-safe on disjoint outputs and
/// allocate nothing.</para>
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

    private static void Execute<TOperation, T>(TOperation operation)
        where TOperation : struct, IRowOperation<TOperation, T>
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        if (!operation.Prepare(out Prepared<TOperation> prepared, out Failure? failure))
        {
            throw failure.ToException();
        }
        Dispatch.Run<TOperation, T>(in prepared);
    }

    /// <summary>
    /// The four row-to-row methods: the spans' lengths, then the kernel's operation. The second
    /// input is ignored by a kernel of one input (the forward passes). An empty span is a null
    /// pointer, which the operation accepts when rows == 0 (and a too-short span is caught first).
    /// </summary>
    private static unsafe void RowToRow<TKernel, T>(int rows, int cols, ReadOnlySpan<T> input, int ldInput,
        ReadOnlySpan<T> secondInput, int ldSecondInput, Span<T> output, int ldOutput)
        where TKernel : struct, IRowKernel
        where T : unmanaged, IBinaryFloatingPointIeee754<T>
    {
        RequireSupported<T>();
        RequireLength(input.Length, rows, cols, ldInput, TKernel.Input.Name);
        if (TKernel.SecondInput is { } second)
        {
            RequireLength(secondInput.Length, rows, cols, ldSecondInput, second.Name);
        }
        RequireLength(output.Length, rows, cols, ldOutput, TKernel.Output.Name);
        fixed (T* a = input)
        fixed (T* b = secondInput)
        fixed (T* o = output)
        {
            if (typeof(T) == typeof(Half))
            {
                HalfRowToRow<TKernel>(rows, cols, (Half*)a, ldInput, (Half*)b, ldSecondInput, (Half*)o, ldOutput);
                return;
            }
            Execute<RowToRowOperation<TKernel, T>, T>(new(rows, cols, a, ldInput, b, ldSecondInput, o, ldOutput));
        }
    }

    private static void RequireSupported<T>()
    {
        if (typeof(T) != typeof(float) && typeof(T) != typeof(double) && typeof(T) != typeof(Half))
        {
            throw new NotSupportedException($"NativeSoftmax computes in float or double (Half through float), not {typeof(T).Name}.");
        }
    }

    private static void RequireLength(int length, long rows, long cols, long ld, string name)
    {
        if (!Checks.Shape(rows, cols, out Failure? failure))
        {
            throw failure.ToException();
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

    private static string CamelCase(string snake) => Failure.CamelCase(snake);
}
