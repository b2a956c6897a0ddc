using BenchmarkDotNet.Running;
using NativeSoftmax.Benchmarks;

// BenchmarkDotNet, one benchmark after another:
//   dotnet run -c Release --project src/Managed/NativeSoftmax.Benchmarks -- --filter '*'
// Side by side, interleaved, checked against float64 (what ./build.sh bench runs):
//   dotnet run -c Release --project src/Managed/NativeSoftmax.Benchmarks -- side-by-side [options]
if (args.Length > 0 && args[0] == "side-by-side")
{
    return SideBySide.Run(args[1..]);
}
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;

/// <summary>Entry point type for BenchmarkSwitcher.</summary>
public partial class Program;
