using NativeSoftmax.Simd;

namespace NativeSoftmax.Kernels;

/// <summary>
/// Per-row formulas of rows across lanes, evaluated on float64 vectors of lanes by
/// <see cref="LaneWidening{TVec, T}.Apply"/>: each input and each result is a slot of W float64
/// values (one per lane, W = the tile's lane count), the slots W values apart.
/// </summary>
internal unsafe interface ILaneFormulas
{
    /// <summary>Lanes i … i + TD.Count − 1: reads the inputs at <c>wide + slot·width + i</c> and
    /// writes the results there.</summary>
    void Apply<TD>(double* wide, int i, int width)
        where TD : struct, IVec<TD, double>;
}
