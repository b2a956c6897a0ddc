namespace NativeSoftmax;

/// <summary>
/// Outcome of argument validation; the values are the C ABI's nsm_status codes
/// (native/include/nativesoftmax.h), pinned and never reused.
/// </summary>
internal enum Status
{
    Ok = 0,
    NullPointer = 1,
    InvalidShape = 2,
    InvalidLeadingDimension = 3,
    LabelOutOfRange = 4,
    InvalidArgument = 5,
    Overlap = 6,
    UnsupportedCpu = 7,
    Internal = 8,
    OutOfMemory = 9,
}
