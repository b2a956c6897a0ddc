using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace NativeSoftmax.Native;

/// <summary>NUL-terminated UTF-8 strings handed to C, at addresses that never move.</summary>
internal static unsafe class Text
{
    /// <summary>A u8 literal (with its own trailing \0): it lives in the image's read-only data.</summary>
    public static byte* Of(ReadOnlySpan<byte> nulTerminated) =>
        (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(nulTerminated));

    public static byte* Empty => Of(""u8);

    /// <summary>A NUL-terminated UTF-8 copy of <paramref name="text"/> in a pinned array, for a
    /// string computed once: keep the array in a static field (that keeps it alive) and hand out
    /// <see cref="Of"/> of it.</summary>
    public static byte[] Pinned(string text)
    {
        byte[] buffer = GC.AllocateArray<byte>(Encoding.UTF8.GetByteCount(text) + 1, pinned: true);
        Encoding.UTF8.GetBytes(text, buffer);
        return buffer;
    }
}
