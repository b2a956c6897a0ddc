using System.Diagnostics.CodeAnalysis;

namespace NativeSoftmax.Operations;

/// <summary>
/// Where a cross-entropy operation gets its options: <see cref="LossOptions"/> itself (the managed
/// API), or the C caller's nsm_cross_entropy_options (the exports), which can fail to read. The
/// operation reads them first thing in its Prepare, so a bad options struct is a validation
/// failure like any other (and, in the exports, inside the region that turns exceptions into
/// statuses).
/// </summary>
internal interface ILossOptionsSource
{
    bool TryRead(out LossOptions options, [NotNullWhen(false)] out Failure? failure);
}
