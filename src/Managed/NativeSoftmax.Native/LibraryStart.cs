using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using NativeSoftmax.Operations;

namespace NativeSoftmax.Native;

/// <summary>What the C library sets when its runtime starts, before any export runs.</summary>
internal static class LibraryStart
{
    /// <summary>This runtime runs the library's code alone: the scratch that ended threads leave is
    /// collected by the library itself (<see cref="ThreadScratch.CollectsEndedThreads"/>).</summary>
    [ModuleInitializer]
    [SuppressMessage("Usage", "CA2255", Justification = "This assembly is the C library's program: its runtime starts for it alone.")]
    internal static void Start()
    {
        // Only compiled ahead of time, as the C library: the xunit suite also loads this assembly
        // under the JIT, in a runtime that runs other code too.
        if (!RuntimeFeature.IsDynamicCodeSupported)
        {
            ThreadScratch.CollectsEndedThreads = true;
        }
    }
}
