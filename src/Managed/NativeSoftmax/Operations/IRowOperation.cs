using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Operations;

/// <summary>
/// One batched operation with its arguments bound. Both the managed API and the C exports build
/// these structs, so validation and computation are written once. Running one takes two steps:
/// <see cref="Prepare"/> checks every argument and computes what the run needs, and gives a
/// <see cref="Prepared{TOperation}"/>; <see cref="Dispatch"/> runs only that, so an operation that
/// was not prepared cannot run.
/// </summary>
/// <remarks>
/// A run is a sequence of row ranges: <see cref="Run"/> computes rows [first, end) and returns
/// their partial loss total, and <see cref="Finish"/> stores what depends on all of them (the
/// reduced loss). Ranges write disjoint outputs, so they may later run on several threads;
/// <see cref="Dispatch"/> adds their totals in a fixed order, so the result does not depend on
/// how the rows are shared out.
/// </remarks>
internal interface IRowOperation<TSelf, T>
    where TSelf : struct, IRowOperation<TSelf, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    /// <summary>How many rows <see cref="Run"/> takes (1 for the Jacobian, which is one row).</summary>
    long Rows { get; }

    /// <summary>Row length: decides which widths fit.</summary>
    long Cols { get; }

    /// <summary>Checks every argument and computes what the run needs. Writes nothing.</summary>
    bool Prepare(out Prepared<TSelf> prepared, [NotNullWhen(false)] out Failure? failure);

    /// <summary>
    /// Computes rows [first, end) at width <typeparamref name="TVec"/> (needs Cols ≥ TVec.Count)
    /// and returns the sum of their losses, added in row order from 0 (0 for an operation
    /// without a loss).
    /// </summary>
    static abstract double Run<TVec>(in Prepared<TSelf> prepared, long first, long end)
        where TVec : struct, IVec<TVec, T>;

    /// <summary>
    /// Allocates, on the calling thread, the <see cref="ThreadScratch"/> that <see cref="Run"/>
    /// needs for any block of at most <paramref name="blockRows"/> rows at width
    /// <typeparamref name="TVec"/> (none by default). <see cref="Dispatch"/> calls it on each
    /// thread before that thread runs a block, so that memory the system refuses fails the call
    /// before any output is written (<see cref="OutOfMemoryException"/>), or leaves a worker out of
    /// the job. The scratch is kept for the thread's later calls, so this costs nothing after the
    /// first.
    /// </summary>
    static virtual void ReserveScratch<TVec>(in Prepared<TSelf> prepared, long blockRows)
        where TVec : struct, IVec<TVec, T>
    {
    }

    /// <summary>After every row: stores what needs the loss total of all rows (a reduced loss).</summary>
    static abstract void Finish(in Prepared<TSelf> prepared, double total);
}
