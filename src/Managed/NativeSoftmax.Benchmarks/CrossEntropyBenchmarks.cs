using BenchmarkDotNet.Attributes;

namespace NativeSoftmax.Benchmarks;

/// <summary>
/// The fused cross-entropy (loss and gradient in one call) against the unfused composition a
/// user would otherwise write with our own primitives: log_softmax, then the loss and o − y.
/// </summary>
[MemoryDiagnoser]
public class CrossEntropyBenchmarks
{
    private float[] _logits = [];
    private float[] _scratch = [];
    private float[] _grad = [];
    private long[] _target = [];

    [Params("256x10", "64x1000", "8x32000")]
    public string Shape { get; set; } = "64x1000";

    // Parsed once in Setup: parsing inside a benchmark would be measured (and allocate).
    private int Rows { get; set; }
    private int Cols { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        (Rows, Cols) = BenchmarkData.Parse(Shape);
        var random = new Random(BenchmarkData.Seed);
        _logits = BenchmarkData.Logits(random, Rows * Cols);
        _scratch = new float[_logits.Length];
        _grad = new float[_logits.Length];
        _target = new long[Rows];
        for (int r = 0; r < Rows; r++)
        {
            _target[r] = random.Next(Cols);
        }
    }

    [Benchmark(Baseline = true)]
    public float Unfused()
    {
        int rows = Rows, cols = Cols;
        SoftmaxPrimitives.LogSoftmax<float>(rows, cols, _logits, cols, _scratch, cols);
        double loss = 0;
        for (int r = 0; r < rows; r++)
        {
            loss -= _scratch[r * cols + (int)_target[r]];
        }
        SoftmaxPrimitives.Softmax<float>(rows, cols, _logits, cols, _grad, cols);
        float inverseRows = 1f / rows;
        for (int r = 0; r < rows; r++)
        {
            Span<float> g = _grad.AsSpan(r * cols, cols);
            for (int j = 0; j < cols; j++)
            {
                g[j] *= inverseRows;
            }
            g[(int)_target[r]] -= inverseRows;
        }
        return (float)(loss / rows);
    }

    [Benchmark]
    public float Fused() => SoftmaxPrimitives.CrossEntropy<float>(Cols, _logits, _target, _grad);
}
