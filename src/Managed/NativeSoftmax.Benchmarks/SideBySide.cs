using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace NativeSoftmax.Benchmarks;

/// <summary>
/// The side-by-side mode that <c>./build.sh bench</c> runs (BenchmarkDotNet runs one benchmark
/// after another, so it cannot interleave contenders): softmax over the same float32 logits by
/// <see cref="SoftmaxPrimitives.Softmax{T}(int, int, ReadOnlySpan{T}, int, Span{T}, int)"/> and by
/// <see cref="TensorPrimitives.SoftMax(ReadOnlySpan{float}, Span{float})"/> row by row.
/// </summary>
/// <remarks>
/// <code>dotnet run -c Release --project src/Managed/NativeSoftmax.Benchmarks -- side-by-side
///     [--shapes 4096x1000,...] [--rounds 5] [--min-time 0.03] [--tolerance 1e-3] [--out results.jsonl]</code>
/// Each output is checked against a float64 reference before it is timed (max |o − p| / max(p,
/// float.MinNormal)); one off by more than the tolerance is recorded <c>"correct": false</c>.
/// First, for a second at least, every contender runs on a few rows of every shape (the same code
/// paths at little cost), so that the JIT has tiered all of it up before anything is timed (a
/// shorter warm-up of each shape alone left the first shape measured partly on tier-0 code);
/// then, per shape, a warm-up of 0.05 s, and every round
/// runs every contender once, in turn (round-robin), for at least the minimum time;
/// the per-call time of each round is written as a JSON line. tools/benchmarks/run_benchmarks.py
/// runs it pinned to one CPU with NATIVESOFTMAX_NUM_THREADS=1 (TensorPrimitives has no threaded
/// softmax to set beside ours), and it records "threads": 1. Nothing asserts on time.
/// </remarks>
internal static class SideBySide
{
    private const string Ours = "NativeSoftmax (.NET)";

    private sealed class Contender(string library, Action call, Func<double> error)
    {
        public string Library { get; } = library;
        public Action Call { get; } = call;
        public Func<double> Error { get; } = error;
        public double MaxError { get; set; }
        public long CallsPerRound { get; set; } = 1;
        public List<double> SecondsPerCall { get; } = [];
    }

    public static int Run(string[] args)
    {
        var shapes = new List<(int Rows, int Cols)>();
        int rounds = 5;
        double minTime = 0.03, tolerance = 1e-3;
        string? outPath = null;
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException(args[i] + " needs a value");
            switch (args[i])
            {
                case "--shapes":
                    shapes.AddRange(Value().Split(',').Select(BenchmarkData.Parse));
                    break;
                case "--rounds":
                    rounds = int.Parse(Value(), CultureInfo.InvariantCulture);
                    break;
                case "--min-time":
                    minTime = double.Parse(Value(), CultureInfo.InvariantCulture);
                    break;
                case "--tolerance":
                    tolerance = double.Parse(Value(), CultureInfo.InvariantCulture);
                    break;
                case "--out":
                    outPath = Value();
                    break;
                default:
                    Console.Error.WriteLine($"side-by-side: unknown argument {args[i]}");
                    return 2;
            }
        }
        if (shapes.Count == 0)
        {
            shapes.AddRange(new[] { "65536x10", "4096x1000", "256x32000", "64x128256", "16x262144" }.Select(BenchmarkData.Parse));
        }
        if (rounds < 1 || shapes.Any(s => s.Rows < 1 || s.Cols < 1))
        {
            Console.Error.WriteLine("side-by-side: --rounds and every shape's rows and cols must be at least 1");
            return 2;
        }

        using var output = outPath is null ? null : new StreamWriter(outPath, append: true);
        string tensorsVersion = typeof(TensorPrimitives).Assembly
            .GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "";
        output?.WriteLine(Json(w =>
        {
            w.WriteString("type", "meta");
            w.WriteString("producer", "dotnet");
            w.WriteNumber("threads", 1);
            w.WriteString("isa", SoftmaxPrimitives.InstructionSet);
            w.WriteString("runtime", RuntimeInformation.FrameworkDescription);
            w.WriteString("system_numerics_tensors", tensorsVersion);
            w.WriteString("nativesoftmax", typeof(SoftmaxPrimitives).Assembly.GetName().Version?.ToString(3) ?? "");
        }));
        Console.WriteLine($"NativeSoftmax (.NET, {SoftmaxPrimitives.InstructionSet}) vs TensorPrimitives {tensorsVersion} on " +
                          $"{RuntimeInformation.FrameworkDescription}; float32, 1 thread; median per call over {rounds} rounds; " +
                          "ratio = time / NativeSoftmax's; error vs float64");

        WarmUpJit(shapes);
        var random = new Random(BenchmarkData.Seed);
        int wrongOurs = 0;
        foreach (var (rows, cols) in shapes)
        {
            float[] logits = BenchmarkData.Logits(random, rows * cols);
            List<Contender> contenders = ContendersFor(rows, cols, logits, RowLogSumExp(rows, cols, logits));
            Measure(contenders, rounds, minTime);
            double oursMedian = Median(contenders[0].SecondsPerCall);
            foreach (Contender c in contenders)
            {
                bool correct = c.MaxError <= tolerance;
                if (!correct && c.Library == Ours)
                {
                    wrongOurs++;
                }
                double t = Median(c.SecondsPerCall);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{rows,7}x{cols,-7} softmax       {c.Library,-21} {t * 1e6,11:F1} us {t * 1e9 / ((double)rows * cols),8:F3} ns/elem " +
                    $"{t / oursMedian,6:F2}x   error {c.MaxError:0.0e+00}{(correct ? "" : "  WRONG")}"));
                output?.WriteLine(Json(w =>
                {
                    w.WriteString("type", "result");
                    w.WriteString("producer", "dotnet");
                    w.WriteString("library", c.Library);
                    w.WriteString("op", "softmax");
                    w.WriteString("dtype", "float32");
                    w.WriteNumber("rows", rows);
                    w.WriteNumber("cols", cols);
                    w.WriteNumber("threads", 1);
                    if (double.IsFinite(c.MaxError))
                    {
                        w.WriteNumber("max_error", c.MaxError);
                    }
                    else
                    {
                        w.WriteNull("max_error"); // NaN or ∞: read back as "no finite error"
                    }
                    w.WriteBoolean("correct", correct);
                    w.WriteNumber("calls_per_round", c.CallsPerRound);
                    w.WriteStartArray("seconds_per_call");
                    foreach (double s in c.SecondsPerCall)
                    {
                        w.WriteNumberValue(s);
                    }
                    w.WriteEndArray();
                }));
            }
            output?.Flush();
        }
        if (wrongOurs > 0)
        {
            Console.Error.WriteLine($"NativeSoftmax gave {wrongOurs} result(s) outside the tolerance {tolerance}");
            return 1;
        }
        return 0;
    }

    private static List<Contender> ContendersFor(int rows, int cols, float[] logits, double[] logSumExp)
    {
        float[] ours = new float[logits.Length], theirs = new float[logits.Length];
        return
        [
            new(Ours, () => SoftmaxPrimitives.Softmax<float>(rows, cols, logits, cols, ours, cols),
                () => SoftmaxError(cols, logits, logSumExp, ours)),
            new("TensorPrimitives", () =>
            {
                for (int r = 0; r < rows; r++)
                {
                    TensorPrimitives.SoftMax(logits.AsSpan(r * cols, cols), theirs.AsSpan(r * cols, cols));
                }
            }, () => SoftmaxError(cols, logits, logSumExp, theirs)),
        ];
    }

    private static void WarmUpJit(List<(int Rows, int Cols)> shapes)
    {
        var random = new Random(1);
        var few = shapes.Select(s =>
        {
            int rows = Math.Clamp(65536 / s.Cols, 1, s.Rows);
            return ContendersFor(rows, s.Cols, BenchmarkData.Logits(random, rows * s.Cols), new double[rows]);
        }).ToList();
        var clock = Stopwatch.StartNew();
        for (int pass = 0; pass < 2 || clock.Elapsed.TotalSeconds < 1; pass++)
        {
            foreach (Contender c in few.SelectMany(list => list))
            {
                for (int i = 0; i < 20; i++)
                {
                    c.Call();
                }
            }
        }
    }

    private static void Measure(List<Contender> contenders, int rounds, double minTime)
    {
        foreach (Contender c in contenders)
        {
            c.Call();
            c.MaxError = c.Error();
            var warmUp = Stopwatch.StartNew();
            while (warmUp.Elapsed.TotalSeconds < 0.05)
            {
                c.Call();
            }
            double once = SecondsOf(1, c.Call);
            c.CallsPerRound = Math.Max(1, (long)Math.Ceiling(minTime / Math.Max(once, 1e-9)));
        }
        for (int round = 0; round < rounds; round++)
        {
            for (int k = 0; k < contenders.Count; k++)
            {
                Contender c = contenders[(k + round) % contenders.Count];
                c.SecondsPerCall.Add(SecondsOf(c.CallsPerRound, c.Call) / c.CallsPerRound);
            }
        }
    }

    private static double SecondsOf(long calls, Action call)
    {
        long start = Stopwatch.GetTimestamp();
        for (long i = 0; i < calls; i++)
        {
            call();
        }
        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    private static double[] RowLogSumExp(int rows, int cols, float[] logits)
    {
        var lse = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> z = logits.AsSpan(r * cols, cols);
            double max = double.NegativeInfinity, sum = 0;
            foreach (float v in z)
            {
                max = Math.Max(max, v);
            }
            foreach (float v in z)
            {
                sum += Math.Exp(v - max);
            }
            lse[r] = max + Math.Log(sum);
        }
        return lse;
    }

    /// <summary>max |o − p| / max(p, float.MinNormal) against the float64 probabilities p.</summary>
    private static double SoftmaxError(int cols, float[] logits, double[] logSumExp, float[] probabilities)
    {
        double worst = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            double p = Math.Exp(logits[i] - logSumExp[i / cols]);
            double e = Math.Abs(probabilities[i] - p) / Math.Max(p, 1.1754943508222875e-38);
            worst = double.IsNaN(e) ? double.PositiveInfinity : Math.Max(worst, e);
        }
        return worst;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        int h = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[h] : 0.5 * (sorted[h - 1] + sorted[h]);
    }

    private static string Json(Action<Utf8JsonWriter> write)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            writer.WriteStartObject();
            write(writer);
            writer.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }
}
