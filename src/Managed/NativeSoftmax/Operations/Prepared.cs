namespace NativeSoftmax.Operations;

/// <summary>
/// An operation that passed its <see cref="IRowOperation{TSelf, T}.Prepare"/>, with what Prepare
/// computed: the only form <see cref="Dispatch"/> runs. Only Prepare makes one.
/// </summary>
internal readonly struct Prepared<TOperation>
    where TOperation : struct
{
    internal Prepared(in TOperation operation) => Operation = operation;

    /// <summary>The validated operation, with the values its Prepare computed.</summary>
    public readonly TOperation Operation;
}
