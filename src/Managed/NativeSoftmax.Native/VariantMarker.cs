using System.Runtime.InteropServices;

namespace NativeSoftmax.Native;

/// <summary>
/// The export that marks this library as a NativeSoftmax variant of one version, for the
/// dispatcher (native/src/dispatch.c): its name is "nsm_variant_v" followed by the version number
/// (NSM_VERSION_NUMBER of nativesoftmax.h; the build generates the name from the header, see
/// HeaderVersion in NativeSoftmax.Native.csproj). The dispatcher reads the name, in the file before
/// it loads it and with dlsym after, and never calls the function: so it can refuse a variant of
/// another version, or a file that is no variant at all (a copy of the dispatcher), without running
/// any of its code or starting its runtime. native/tests/check_exports.sh checks that every variant
/// exports the name the header's version gives.
/// </summary>
internal static class VariantMarker
{
    /// <summary>Never called by the dispatcher; returns the version to whoever does call it.</summary>
    [UnmanagedCallersOnly(EntryPoint = HeaderVersion.VariantMarker)]
    public static int Marker() => HeaderVersion.Number;
}
