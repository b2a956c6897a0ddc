using System.Runtime.InteropServices;

namespace NativeSoftmax.Threading;

/// <summary>The running process's id, asked of the kernel on every call: the runtime caches
/// <see cref="Environment.ProcessId"/>, so in a child forked after it was read it keeps the
/// parent's id. Threads, and the runtime's finalizer thread, stay behind in the parent.</summary>
internal static partial class ProcessId
{
    [LibraryImport("libc", EntryPoint = "getpid")]
    internal static partial int Current();
}
