namespace NativeSoftmax;

/// <summary>A failed validation: its status and a message naming the argument (C names, snake_case).</summary>
internal sealed record Failure(Status Status, string Argument, string Message)
{
    /// <summary>The exception the managed API throws for this failure.</summary>
    public Exception ToException()
    {
        string parameter = CamelCase(Argument);
        return Status switch
        {
            Status.NullPointer => new ArgumentNullException(parameter, Message),
            Status.InvalidShape or Status.InvalidLeadingDimension or Status.LabelOutOfRange
                => new ArgumentOutOfRangeException(parameter, Message),
            _ => new ArgumentException(Message, parameter),
        };
    }

    /// <summary>"ld_logits" → "ldLogits": the C# parameter that corresponds to a C argument.</summary>
    internal static string CamelCase(string snake)
    {
        var parts = snake.Split('_');
        for (int i = 1; i < parts.Length; i++)
        {
            if (parts[i].Length > 0)
            {
                parts[i] = char.ToUpperInvariant(parts[i][0]) + parts[i][1..];
            }
        }
        return string.Concat(parts);
    }
}
