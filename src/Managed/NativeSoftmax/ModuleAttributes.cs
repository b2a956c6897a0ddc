// Attributes of the whole NativeSoftmax module.

// No zeroing of locals and stackalloc buffers: every buffer the kernels take on the stack (chunk
// statistics, per-lane values) is written before it is read. Zeroing the 1–2 KiB rows-across-lanes
// tiles, when they were stack buffers, cost about a sixth of a 1 × 10 softmax call (perf: the
// zeroing loop of RunShortRows).
[module: System.Runtime.CompilerServices.SkipLocalsInit]
