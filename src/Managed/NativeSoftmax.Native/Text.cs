using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace NativeSoftmax.Native;

/// <summary>NUL-terminated UTF-8 strings handed to C, at addresses that never move.</summary>
internal static unsafe class Text
{
    /// <summary>A u8 literal (with its own trailing \0): it lives in the image's read-only data.</summary>
    public static byte* Of(ReadOnlySpan<byte> nulTerminated) =>
        (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(nulTerminated));

    public static byte* Empty => Of(""u8);
}
