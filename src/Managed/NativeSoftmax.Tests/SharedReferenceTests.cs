using System.Globalization;

namespace NativeSoftmax.Tests;

/// <summary>
/// The reference values that PyTorch computed in float64 (tests/reference/cases.txt), checked
/// through the managed API; the C harness and pytest check the same file through the C ABI.
/// </summary>
public class SharedReferenceTests
{
    /// <summary>One record of cases.txt.</summary>
    public sealed record Case(string Name, string Op, int Rows, int Cols, Reduction Reduction, long IgnoreIndex,
        double LabelSmoothing, Dictionary<string, double[]> Values)
    {
        public override string ToString() => Name;
    }

    private static readonly Lazy<IReadOnlyList<Case>> Cases = new(Load);

    private static IReadOnlyList<Case> Load()
    {
        string? directory = AppContext.BaseDirectory;
        while (directory != null && !File.Exists(Path.Combine(directory, "tests", "reference", "cases.txt")))
        {
            directory = Path.GetDirectoryName(directory);
        }
        Assert.True(directory != null, "tests/reference/cases.txt not found above " + AppContext.BaseDirectory);
        var cases = new List<Case>();
        Case? current = null;
        foreach (string line in File.ReadLines(Path.Combine(directory!, "tests", "reference", "cases.txt")))
        {
            string[] f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length == 0 || f[0].StartsWith('#'))
            {
                continue;
            }
            if (f[0] == "case")
            {
                current = new Case(f[1], f[2], int.Parse(f[3], CultureInfo.InvariantCulture), int.Parse(f[4], CultureInfo.InvariantCulture),
                    (Reduction)int.Parse(f[5], CultureInfo.InvariantCulture), long.Parse(f[6], CultureInfo.InvariantCulture),
                    double.Parse(f[7], CultureInfo.InvariantCulture), []);
            }
            else if (f[0] == "end")
            {
                cases.Add(current!);
                current = null;
            }
            else
            {
                current!.Values[f[0]] = f.Skip(1).Select(ParseValue).ToArray();
            }
        }
        return cases;
    }

    /// <summary>Python writes "inf", "-inf" and "nan" for the non-finite values.</summary>
    private static double ParseValue(string text) => text switch
    {
        "inf" => double.PositiveInfinity,
        "-inf" => double.NegativeInfinity,
        "nan" => double.NaN,
        _ => double.Parse(text, CultureInfo.InvariantCulture),
    };

    public static TheoryData<string> Names()
    {
        var data = new TheoryData<string>();
        foreach (Case c in Cases.Value)
        {
            data.Add(c.Name);
        }
        return data;
    }

    [Fact]
    public void TheFileHoldsEveryOperation()
    {
        var ops = Cases.Value.Select(c => c.Op).ToHashSet();
        Assert.Equal(new HashSet<string> { "softmax", "log_softmax", "cross_entropy", "cross_entropy_soft" }, ops);
        Assert.True(Cases.Value.Count >= 100, $"only {Cases.Value.Count} cases");
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Float64MatchesPyTorch(string name) => Check<double>(Cases.Value.Single(c => c.Name == name), 1e-12, 1e-12);

    [Theory]
    [MemberData(nameof(Names))]
    public void Float32MatchesPyTorch(string name) => Check<float>(Cases.Value.Single(c => c.Name == name), 1e-5, 1e-6);

    private static void Check<T>(Case c, double relative, double absolute)
        where T : unmanaged, System.Numerics.IBinaryFloatingPointIeee754<T>
    {
        T[] Cast(double[] values) => values.Select(T.CreateTruncating).ToArray();
        int rows = c.Rows, cols = c.Cols;
        T[] logits = Cast(c.Values["logits"]);
        T[] output, grad = new T[rows * cols];
        switch (c.Op)
        {
            case "softmax":
            case "log_softmax":
            {
                output = new T[rows * cols];
                T[] upstream = Cast(c.Values["upstream"]);
                if (c.Op == "softmax")
                {
                    SoftmaxPrimitives.Softmax<T>(rows, cols, logits, cols, output, cols);
                    SoftmaxPrimitives.SoftmaxBackward<T>(rows, cols, upstream, cols, output, cols, grad, cols);
                }
                else
                {
                    SoftmaxPrimitives.LogSoftmax<T>(rows, cols, logits, cols, output, cols);
                    SoftmaxPrimitives.LogSoftmaxBackward<T>(rows, cols, upstream, cols, output, cols, grad, cols);
                }
                break;
            }
            default:
            {
                var options = new CrossEntropyOptions { Reduction = c.Reduction, IgnoreIndex = c.IgnoreIndex, LabelSmoothing = c.LabelSmoothing };
                T[] weight = c.Values.TryGetValue("weight", out double[]? w) ? Cast(w) : [];
                output = new T[c.Reduction == Reduction.None ? rows : 1];
                if (c.Op == "cross_entropy")
                {
                    long[] target = c.Values["target"].Select(v => (long)v).ToArray();
                    SoftmaxPrimitives.CrossEntropy<T>(rows, cols, logits, cols, target, weight, output, grad, cols, options);
                }
                else
                {
                    T[] target = Cast(c.Values["target"]);
                    SoftmaxPrimitives.CrossEntropy<T>(rows, cols, logits, cols, target, cols, weight, output, grad, cols, options);
                }
                break;
            }
        }
        AssertClose(c, "output", c.Values["output"], output, relative, absolute);
        AssertClose(c, "grad", c.Values["grad"], grad, relative, absolute);
    }

    private static void AssertClose<T>(Case c, string what, double[] expected, T[] actual, double relative, double absolute)
        where T : unmanaged, System.Numerics.IBinaryFloatingPointIeee754<T>
    {
        Assert.True(expected.Length == actual.Length, $"{c.Name} {typeof(T).Name} {what}: {actual.Length} values, reference has {expected.Length}");
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = double.CreateTruncating(actual[i]);
            bool ok = double.IsNaN(e) ? double.IsNaN(a)
                : double.IsInfinity(e) ? a == e
                : Math.Abs(a - e) <= absolute + relative * Math.Abs(e);
            Assert.True(ok, $"{c.Name} {typeof(T).Name} {what}[{i}]: got {a:R}, PyTorch {e:R}");
        }
    }
}
