// Attributes of the whole NativeSoftmax module.

// No zeroing of locals and stackalloc buffers: every buffer the kernels take on the stack (the
// rows-across-lanes tiles, chunk statistics) is written before it is read, and zeroing the 1–2 KiB
// tiles cost about a sixth of a 1 × 10 softmax call (perf: the zeroing loop of RunShortRows).
[module: System.Runtime.CompilerServices.SkipLocalsInit]
