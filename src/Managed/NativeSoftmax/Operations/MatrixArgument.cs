namespace NativeSoftmax.Operations;

/// <summary>A matrix argument: where it starts, its leading dimension, and the C names of both for
/// messages (constants, so validating allocates nothing).</summary>
internal readonly unsafe struct MatrixArgument(void* start, long ld, ArgumentName name)
{
    public void* Start { get; } = start;
    public long Ld { get; } = ld;
    public string Name => name.Name;
    public string LdName => name.LdName;
}

/// <summary>The C names of a matrix argument and of its leading dimension ("logits", "ld_logits").</summary>
internal readonly record struct ArgumentName(string Name, string LdName);
