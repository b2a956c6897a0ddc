using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace NativeSoftmax.Native;

/// <summary>
/// The thread-local message behind nsm_last_error(): a pinned, NUL-terminated UTF-8 buffer per
/// thread, so the pointer handed to C stays valid until that thread's next failing call.
/// </summary>
internal static unsafe class LastError
{
    private const int Capacity = 1024;

    [ThreadStatic]
    private static byte[]? t_buffer;

    /// <summary>The current thread's message, or "" if no call has failed on it.</summary>
    public static byte* Message =>
        t_buffer is { } buffer ? (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer)) : Text.Empty;

    /// <summary>Records the message and returns the status code to hand back to C.</summary>
    public static int Set(Status status, string message)
    {
        byte[] buffer = t_buffer ??= GC.AllocateArray<byte>(Capacity, pinned: true);
        int written = Encoding.UTF8.GetBytes(message.AsSpan(0, Math.Min(message.Length, Capacity / 4 - 1)), buffer);
        buffer[written] = 0;
        return (int)status;
    }

    public static int Set(Failure failure) => Set(failure.Status, failure.Message);
}
