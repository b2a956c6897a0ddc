namespace NativeSoftmax.Benchmarks;

/// <summary>The shapes and inputs every benchmark shares, so that all measure the same data.</summary>
internal static class BenchmarkData
{
    public const int Seed = 20261129;

    /// <summary>"64x1000" → (64, 1000): rows × classes.</summary>
    public static (int Rows, int Cols) Parse(string shape)
    {
        string[] parts = shape.Split('x');
        return (int.Parse(parts[0]), int.Parse(parts[1]));
    }

    /// <summary>Logits uniform in [−10, 10).</summary>
    public static float[] Logits(Random random, int count)
    {
        var logits = new float[count];
        for (int i = 0; i < count; i++)
        {
            logits[i] = (float)(random.NextDouble() * 20 - 10);
        }
        return logits;
    }
}
