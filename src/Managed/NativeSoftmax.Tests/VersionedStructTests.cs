namespace NativeSoftmax.Tests;

/// <summary>
/// A caller's options struct larger than the library knows (a newer header): accepted only when
/// the bytes the library does not know are zero; the failure names the first offset that is not;
/// sizes above the read cap are rejected unread. (The C harness checks the same through
/// nsm_cross_entropy_options on every variant.)
/// </summary>
public unsafe class VersionedStructTests
{
    private const uint Known = 32;

    [Fact]
    public void UnknownBytesThatAreZeroAreAccepted()
    {
        byte* bytes = stackalloc byte[64];
        new Span<byte>(bytes, 64).Fill(0);
        new Span<byte>(bytes, (int)Known).Fill(0xA5); // the known fields may hold anything
        foreach (uint size in new uint[] { Known, Known + 1, 40, 64 })
        {
            Assert.True(Checks.UnknownBytesZero(bytes, size, Known, "options", out Failure? failure), $"size {size}: {failure?.Message}");
        }
    }

    [Theory]
    [InlineData(40u, 32u)]
    [InlineData(40u, 36u)]
    [InlineData(40u, 39u)]
    [InlineData(64u, 63u)]
    public void AnUnknownByteThatIsSetIsRejectedByItsOffset(uint size, uint offset)
    {
        byte* bytes = stackalloc byte[64];
        new Span<byte>(bytes, 64).Fill(0);
        bytes[offset] = 1;
        Assert.False(Checks.UnknownBytesZero(bytes, size, Known, "options", out Failure? failure));
        Assert.Equal(Status.InvalidArgument, failure!.Status);
        Assert.Contains($"offset {offset}", failure.Message);
    }

    [Fact]
    public void ASizeAboveTheCapIsRejected()
    {
        byte* bytes = stackalloc byte[1];
        Assert.False(Checks.UnknownBytesZero(bytes, Checks.MaxStructBytes + 1, Known, "options", out Failure? failure));
        Assert.Equal(Status.InvalidArgument, failure!.Status);
        Assert.Contains($"{Checks.MaxStructBytes}", failure.Message);
        Assert.Equal(4096u, Checks.MaxStructBytes); // the cap nativesoftmax.h states
    }
}
