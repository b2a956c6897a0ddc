// Uses the NativeSoftmax package as an application does, and checks what it gets: softmax and the
// fused cross-entropy of a small batch against a float64 reference computed here, and the package
// version against the one asked for. Prints the instruction-set path and exits 0, or prints what
// is wrong and exits 1. With "--expect-isa NAME" the path must be NAME (a NativeAOT build's path
// is fixed by its IlcInstructionSet).
using System.Reflection;
using NativeSoftmax;

const int Rows = 3, Cols = 5;
float[] logits =
{
    1f, 2f, 3f, 4f, 5f,
    -2.5f, 0f, 0.5f, 7f, -1f,
    1000f, 1001f, 999f, 1000.5f, 998f,   // exp(1000) overflows float; the shift by the maximum does not
};
long[] labels = { 4, 0, 1 };

var probabilities = new float[Rows * Cols];
var grad = new float[Rows * Cols];
SoftmaxPrimitives.Softmax<float>(Rows, Cols, logits, Cols, probabilities, Cols);
float loss = SoftmaxPrimitives.CrossEntropy<float>(Cols, logits, labels, grad);

int failures = 0;
double expectedLoss = 0;
for (int r = 0; r < Rows; r++)
{
    double max = double.NegativeInfinity, sum = 0;
    for (int j = 0; j < Cols; j++) max = Math.Max(max, logits[r * Cols + j]);
    for (int j = 0; j < Cols; j++) sum += Math.Exp(logits[r * Cols + j] - max);
    expectedLoss += (max + Math.Log(sum) - logits[r * Cols + (int)labels[r]]) / Rows;
    for (int j = 0; j < Cols; j++)
    {
        double o = Math.Exp(logits[r * Cols + j] - max) / sum;
        double g = (o - (j == labels[r] ? 1 : 0)) / Rows;
        Check($"softmax[{r}, {j}]", probabilities[r * Cols + j], o, 1e-6 * o);
        Check($"grad[{r}, {j}]", grad[r * Cols + j], g, 1e-6 / Rows);
    }
}
Check("loss", loss, expectedLoss, 2e-6 * (1 + Math.Abs(expectedLoss)));

string version = typeof(SoftmaxPrimitives).Assembly.GetName().Version?.ToString(3) ?? "?";
string? expectedVersion = typeof(Program).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
    .FirstOrDefault(a => a.Key == "NativeSoftmaxVersion")?.Value;
if (version != expectedVersion)
{
    Console.Error.WriteLine($"FAIL: the package's assembly is version {version}, the sample asked for {expectedVersion}");
    failures++;
}
int expectIsa = Array.IndexOf(args, "--expect-isa");
if (expectIsa >= 0 && (expectIsa + 1 >= args.Length || SoftmaxPrimitives.InstructionSet != args[expectIsa + 1]))
{
    Console.Error.WriteLine($"FAIL: instruction set {SoftmaxPrimitives.InstructionSet}, expected {(expectIsa + 1 < args.Length ? args[expectIsa + 1] : "(missing)")}");
    failures++;
}
if (failures > 0)
{
    return 1;
}
Console.WriteLine($"NativeSoftmax {version}: loss {loss:G7} on {SoftmaxPrimitives.InstructionSet}; every check passed");
return 0;

void Check(string what, double got, double expected, double tolerance)
{
    if (!(Math.Abs(got - expected) <= tolerance))
    {
        Console.Error.WriteLine($"FAIL: {what} = {got:G9}, expected {expected:G9} (tolerance {tolerance:G3})");
        failures++;
    }
}
