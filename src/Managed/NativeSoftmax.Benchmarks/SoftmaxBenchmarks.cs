using System.Numerics.Tensors;
using BenchmarkDotNet.Attributes;
using NativeSoftmax.Operations;
using NativeSoftmax.Simd;

namespace NativeSoftmax.Benchmarks;

/// <summary>
/// Softmax over a batch of rows, side by side in one run: ours at the dispatched width and at
/// each width, .NET's TensorPrimitives.SoftMax row by row (the baseline a .NET user would pick;
/// note it does not subtract the maximum), and a plain scalar loop with Math.Exp.
/// </summary>
[MemoryDiagnoser]
public unsafe class SoftmaxBenchmarks
{
    private float[] _logits = [];
    private float[] _probabilities = [];

    /// <summary>rows × cols, from small heads to a Llama-3 vocabulary.</summary>
    [Params("256x10", "64x1000", "8x32000", "2x128256")]
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
        _probabilities = new float[_logits.Length];
    }

    [Benchmark(Baseline = true)]
    public void TensorPrimitivesSoftMax()
    {
        int cols = Cols;
        for (int r = 0; r < Rows; r++)
        {
            TensorPrimitives.SoftMax(_logits.AsSpan(r * cols, cols), _probabilities.AsSpan(r * cols, cols));
        }
    }

    [Benchmark]
    public void ScalarLoop()
    {
        int cols = Cols;
        for (int r = 0; r < Rows; r++)
        {
            ReadOnlySpan<float> z = _logits.AsSpan(r * cols, cols);
            Span<float> o = _probabilities.AsSpan(r * cols, cols);
            float max = float.NegativeInfinity;
            foreach (float v in z)
            {
                max = Math.Max(max, v);
            }
            double sum = 0;
            for (int j = 0; j < cols; j++)
            {
                o[j] = MathF.Exp(z[j] - max);
                sum += o[j];
            }
            float inverse = (float)(1 / sum);
            for (int j = 0; j < cols; j++)
            {
                o[j] *= inverse;
            }
        }
    }

    [Benchmark]
    public void NativeSoftmaxDispatched() =>
        SoftmaxPrimitives.Softmax<float>(Rows, Cols, _logits, Cols, _probabilities, Cols);

    [Benchmark]
    public void NativeSoftmax128() => AtWidth<Vec128<float>>();

    [Benchmark]
    public void NativeSoftmax256() => AtWidth<Vec256<float>>();

    [Benchmark]
    public void NativeSoftmax512() => AtWidth<Vec512<float>>();

    private void AtWidth<TVec>() where TVec : struct, IVec<TVec, float>
    {
        fixed (float* z = _logits)
        fixed (float* o = _probabilities)
        {
            new RowToRowOperation<Kernels.SoftmaxRow, float>(Rows, Cols, z, Cols, o, Cols).Prepare(out var prepared, out _);
            Dispatch.RunAtWidth<RowToRowOperation<Kernels.SoftmaxRow, float>, float, TVec>(in prepared);
        }
    }
}
