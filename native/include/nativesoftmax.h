/*
 * nativesoftmax.h — the C ABI of NativeSoftmax.
 *
 * Softmax, log-softmax, their backward passes (vector–Jacobian products) and the fused softmax
 * cross-entropy loss with its gradient, over batches of rows: row-major [rows × cols] matrices of
 * float32 or float64, one softmax per row. The gradient of the cross-entropy with respect to the
 * logits is  dE/dz_i = o_i · Σ_j y_j − y_i  (= o_i − y_i for one-hot or normalised targets). Every
 * formula below is derived in docs/derivation.md, whose sections the functions cite; the design
 * decisions are in docs/design.md.
 *
 * Conventions that hold for every function (stated once here, not repeated per function):
 *
 *  - Every function returns an nsm_status; NSM_OK is 0. On any other status nothing has been
 *    written to any output, and nsm_last_error() gives a message saying which argument is wrong.
 *    Beyond the errors each function lists, any function that computes may return
 *    NSM_ERR_OUT_OF_MEMORY when the system refuses the scratch it needs ("Memory" below, and
 *    the half-precision functions' float32 scratch: up to a whole row, cols·(cols + 1) floats
 *    for the Jacobian), also having written nothing.
 *  - Argument order: shape, then inputs, then outputs. Sizes and leading dimensions count elements.
 *    `rows` may be 0 (nothing is computed; a "mean" loss is NaN, a "sum" loss is 0). `cols` (the
 *    number of classes) must be at least 1. A leading dimension `ld_*` is the distance in elements
 *    between the starts of two consecutive rows and must be >= cols; element (r, c) of a matrix
 *    `a` is a[r * ld_a + c]. Only [a, a + (rows − 1)·ld_a + cols) is ever read or written.
 *  - Pointers: a pointer a function reads or writes through must not be NULL when rows > 0. When
 *    rows == 0 any pointer may be NULL (torch.empty(0, C).data_ptr() is 0): nothing is read or
 *    written, except a reduced loss ("sum", "mean"), which still gets its value (0, NaN) when its
 *    pointer is given. cols and the leading dimensions are checked all the same. (The Jacobian has
 *    no rows argument: its pointers are always needed.)
 *  - In place: where a function says so, an output may be *exactly* its input (same pointer and
 *    same leading dimension). Any other overlap between an output and an input or another output
 *    is rejected with NSM_ERR_OVERLAP.
 *  - Numerics: every row is shifted by its maximum before exponentiation, so no finite logit
 *    overflows (logits up to ±3.4e38 in float32, ±1.8e308 in float64). The shift z − m is
 *    computed exactly (its rounding error is carried into exp), so the relative accuracy of a
 *    probability does not degrade with its distance below the row's maximum. exp is a vectorised
 *    approximation with a measured maximum error below 1.25 ulp, with FMA (avx2, avx512, neon) or
 *    without (sse4.2). Sums of a row are accumulated in the working precision over blocks of 32
 *    vectors (four partial sums per lane) and the blocks added in float64, so the accuracy does
 *    not degrade with the row length. The exponentials equal to 1 (the row's maximum) are counted
 *    apart from the rest, so that when one class dominates, its log-probability −log1p(rest), its
 *    cross-entropy loss, its gradient o − 1 = −rest/Σ and its Jacobian diagonal o_i·Σ_{j≠i} o_j
 *    keep a relative accuracy of a few ulp (float32 log_softmax([20, 0]) is [−2.0611537e-9, −20],
 *    not [0, −20]). Label-smoothing sums Σ_j y_j·(m − z_j) that overflow float32 (logits near
 *    ±FLT_MAX) are formed again in float64. Reductions of the loss (sum, mean) accumulate in
 *    float64 for both dtypes: the row losses of each block of rows in order, then the blocks in
 *    order (a fixed grouping that depends on the row length alone: 16384 elements a block, 1 to
 *    64 rows). softmax and log_softmax rows of 8192 classes or more, and hard-label cross-entropy
 *    rows and vocabulary-split shards of 8192 to 2^20 + 4095 classes, go by chunks of 4096 columns
 *    (the last takes the remainder): each chunk's maximum and sum of exponentials (with hard
 *    labels, its label-smoothing sum too), the chunks folded in column order in float64, then one
 *    pass that writes the output.
 *  - Flush rule: every output (probabilities, log-probabilities, gradients, Jacobian entries,
 *    losses) whose magnitude is below the smallest normal number (FLT_MIN, DBL_MIN) is stored as
 *    0 (of either sign): no output is ever subnormal.
 *  - Non-finite logits follow IEEE arithmetic on the formulas above, as PyTorch does:
 *      −inf in a row with a finite maximum → probability 0, log-probability −inf;
 *      a row whose logits are all −inf, a row containing +inf, or a row containing NaN → every
 *      output of that row is NaN (and its loss is NaN), except a cross-entropy row that asks for
 *      nothing (an ignored label, or soft targets that are all zero): loss 0, gradient 0.
 *  - Thread safety: every function is reentrant and may be called from many threads at once on
 *    disjoint outputs. nsm_last_error() is per thread.
 *  - Threads: a call may run its rows, and the columns of a long row, on several threads: the
 *    calling thread and the library's worker threads, which it starts on the first call large
 *    enough to gain from them and keeps for the life of the process. Results are bitwise identical
 *    for every thread count (rows and columns are cut into blocks that depend only on the shape,
 *    and partial sums are added in block order). How many threads a call may use, the caller's
 *    included, is nsm_get_num_threads(): by default NATIVESOFTMAX_NUM_THREADS if it is a whole
 *    number in [1, 1024] in decimal digits alone (read on the first call and by
 *    nsm_set_num_threads(0); any other value, signed or spaced, is ignored), else the number of
 *    CPUs this process may run on, as .NET's Environment.ProcessorCount counts them (its affinity
 *    mask, and a cgroup CPU quota where one is set); nsm_set_num_threads() changes it. Work too
 *    small to gain from a thread stays on the calling thread. The workers serve one call at a
 *    time: a call made while another thread's call is using them runs on its own thread alone,
 *    so callers that already run many threads are not oversubscribed. In a child process forked
 *    after the workers started, every call runs on its calling thread. fork() itself waits (a
 *    pthread_atfork handler) until no other thread is inside a call of this library (while the
 *    process's first call runs, for a second at most: it may need the dynamic loader's lock),
 *    then, for a second at most, until the library's own threads (its workers, the runtime's) are
 *    asleep. Calls made meanwhile wait: without limit while that handler runs, then for 50 ms at
 *    most while the host's own fork handlers run (one of those might need a lock the calling
 *    thread holds), after which they go on. A signal handler's fork during its thread's call,
 *    and its call during a call that has begun computing or during the fork handler, go on
 *    without waiting. A child so forked can call the library, whichever call another thread was
 *    making, unless one of these waits ran out or was skipped. When the system refuses a worker
 *    thread (a process or container thread limit), the call runs on the threads that exist, its
 *    caller's at least, and a later call tries again. Apart from these workers, the NativeAOT
 *    runtime inside the library starts threads of its own (a finalizer thread) on the first call.
 *  - Signals: the first call starts the runtime, which installs handlers of SIGSEGV, SIGFPE and
 *    SIGRTMIN (with which it stops threads for garbage collection) and changes no other
 *    signal's disposition: SIGPIPE stays as the host set it (the runtime would ignore it).
 *  - Memory: a thread that computes short rows across vector lanes (W to 4W columns at W lanes:
 *    softmax, log_softmax, log_softmax_backward, cross-entropy) keeps a scratch of a few KiB for
 *    their tiles, allocated on the heap on its first such call (not on the stack) and reused by
 *    its later calls; it is freed some time after the thread ends (by the runtime's finalizer).
 *    What ended threads leave stays bounded: a call whose scratch would take that of all threads
 *    past 64 MiB (or past twice what was in use the last time) first collects it, on a helper
 *    thread, pausing the library's threads meanwhile; not in a child forked from the process
 *    that loaded the library (it has no thread to collect with), where it is kept. Every thread
 *    gets the scratch a call needs before it computes: when the system refuses the calling
 *    thread's, the call returns NSM_ERR_OUT_OF_MEMORY; a worker that cannot get its own leaves
 *    the call to the other threads.
 *  - The CPU path (AVX-512, AVX2, SSE4.2, NEON) is chosen once, on the first call, by CPUID;
 *    the environment variable NATIVESOFTMAX_MAX_ISA caps it: "avx512", "avx2" or "sse4.2" on
 *    x86-64, "neon" on AArch64 (case is ignored, empty means unset; any other value, or another
 *    architecture's name, makes every call fail with a message saying so).
 *    nsm_isa() says which path is in use. Results agree across paths to the stated tolerances,
 *    not bit for bit. Each path is a separate library file beside the real file of this library
 *    (a directory fixed when it is loaded, so a later chdir() changes nothing). A file that is cut
 *    short, built for another machine or ELF class, a link to or copy of this library, or a build
 *    of another version is refused without running any of its code, and the next lower path is
 *    tried; when none is left, every call fails with NSM_ERR_UNSUPPORTED_CPU and nsm_last_error()
 *    names each path tried and why it was refused. The first call may be made on a thread with a
 *    16 KiB stack (PTHREAD_STACK_MIN on x86-64).
 *
 * The header compiles as C99 and as C++.
 */
#ifndef NATIVESOFTMAX_H
#define NATIVESOFTMAX_H

#include <stddef.h>
#include <stdint.h>

#define NSM_VERSION_MAJOR 0
#define NSM_VERSION_MINOR 2
#define NSM_VERSION_PATCH 0
/** MAJOR·10000 + MINOR·100 + PATCH; compare with nsm_version_number() at run time. */
#define NSM_VERSION_NUMBER (NSM_VERSION_MAJOR * 10000 + NSM_VERSION_MINOR * 100 + NSM_VERSION_PATCH)
#define NSM_VERSION_STRING "0.2.0"

#if defined(_WIN32) && defined(NSM_BUILDING_LIBRARY)
#define NSM_API __declspec(dllexport)
#elif defined(_WIN32)
#define NSM_API __declspec(dllimport)
#elif defined(__GNUC__)
#define NSM_API __attribute__((visibility("default")))
#else
#define NSM_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Status codes. Values are pinned: a code is never renumbered or reused.
 * ------------------------------------------------------------------------------------------- */
typedef int32_t nsm_status;

#define NSM_OK                      0  /**< Success. */
#define NSM_ERR_NULL_POINTER        1  /**< A required pointer is NULL. */
#define NSM_ERR_INVALID_SHAPE       2  /**< rows < 0, cols < 1, or the matrix is too large to address. */
#define NSM_ERR_INVALID_LEADING_DIM 3  /**< A leading dimension is smaller than cols. */
#define NSM_ERR_LABEL_OUT_OF_RANGE  4  /**< A class index is outside [0, cols) and is not ignore_index. */
#define NSM_ERR_INVALID_ARGUMENT    5  /**< An option is out of its domain (reduction, label_smoothing,
                                            weight, grad_scale, options->struct_size). */
#define NSM_ERR_OVERLAP             6  /**< An output partially overlaps an input or another output. */
#define NSM_ERR_UNSUPPORTED_CPU     7  /**< No build of the library can run on this CPU, a build is
                                            missing or refused (see "The CPU path" above), or
                                            NATIVESOFTMAX_MAX_ISA is not understood. */
#define NSM_ERR_INTERNAL            8  /**< An unexpected failure inside the library (a bug: please report). */
#define NSM_ERR_OUT_OF_MEMORY       9  /**< The system refused the working memory a call needs (see the conventions). */

/** Static, never-NULL English text for a status code ("unknown status" for unknown codes). */
NSM_API const char* nsm_status_string(nsm_status status);

/** The message of the most recent failed call on the calling thread ("" if none). The text is
 *  owned by the library and stays valid until the next call on the same thread. */
NSM_API const char* nsm_last_error(void);

/** Run-time version: NSM_VERSION_NUMBER of the library that was loaded. Programs should check
 *  that it equals the NSM_VERSION_NUMBER they were compiled with. */
NSM_API int32_t nsm_version_number(void);
/** Run-time version as text, "MAJOR.MINOR.PATCH". */
NSM_API const char* nsm_version_string(void);

/** The instruction-set path in use: "avx512", "avx2", "sse4.2" or "neon"; "none" when no build
 *  can run here (every other call then returns NSM_ERR_UNSUPPORTED_CPU). */
NSM_API const char* nsm_isa(void);

/** How many threads a call may use, the calling thread included: 1 to 1024. On the first call
 *  this loads the library's computing variant (1 when none can run here). */
NSM_API int32_t nsm_get_num_threads(void);

/** Sets how many threads a call may use, the calling thread included, for the whole process
 *  (1: every call runs on its calling thread); 0 restores the default (see "Threads" above).
 *  Calls already running keep the count they started with.
 *  Errors: NSM_ERR_INVALID_ARGUMENT for a count below 0 or above 1024 (the count is unchanged). */
NSM_API nsm_status nsm_set_num_threads(int32_t num_threads);

/* ---------------------------------------------------------------------------------------------
 * softmax:      probabilities[r, j] = exp(z[r, j] − m_r) / Σ_k exp(z[r, k] − m_r),  m_r = max_k z[r, k]
 * log_softmax:  log_probabilities[r, j] = z[r, j] − m_r − log Σ_k exp(z[r, k] − m_r)
 *
 * Shapes: logits [rows × cols] (ld_logits), output [rows × cols] (ld_out).
 * In place: the output may be exactly the logits.
 * Accuracy (float32): softmax within 1e-6 relative of the exact value; log_softmax within
 * 2e-6·(1 + |exact|), and within 4 ulp at the row's maximum (a dominant class). log_softmax is
 * never computed as log(softmax), so it does not underflow.
 * Errors: NSM_ERR_NULL_POINTER, NSM_ERR_INVALID_SHAPE, NSM_ERR_INVALID_LEADING_DIM, NSM_ERR_OVERLAP.
 * Source: docs/derivation.md §1.
 * ------------------------------------------------------------------------------------------- */
NSM_API nsm_status nsm_softmax_f32(int64_t rows, int64_t cols,
                                   const float* logits, int64_t ld_logits,
                                   float* probabilities, int64_t ld_probabilities);
NSM_API nsm_status nsm_softmax_f64(int64_t rows, int64_t cols,
                                   const double* logits, int64_t ld_logits,
                                   double* probabilities, int64_t ld_probabilities);
NSM_API nsm_status nsm_log_softmax_f32(int64_t rows, int64_t cols,
                                       const float* logits, int64_t ld_logits,
                                       float* log_probabilities, int64_t ld_log_probabilities);
NSM_API nsm_status nsm_log_softmax_f64(int64_t rows, int64_t cols,
                                       const double* logits, int64_t ld_logits,
                                       double* log_probabilities, int64_t ld_log_probabilities);

/* ---------------------------------------------------------------------------------------------
 * softmax_backward:      grad_logits = o ⊙ (g − ⟨g, o⟩)         (the vector–Jacobian product with
 *                        J = diag(o) − o oᵀ; docs/derivation.md §3)
 * log_softmax_backward:  grad_logits = g − exp(log_o) · Σ_j g_j
 *
 * As PyTorch's _softmax_backward_data / _log_softmax_backward_data: the inputs are the upstream
 * gradient g = grad_output and the forward *output* (probabilities o for softmax, log-probabilities
 * for log_softmax), each [rows × cols] with its own leading dimension.
 * In place: grad_logits may be exactly grad_output or exactly output.
 * Errors: NSM_ERR_NULL_POINTER, NSM_ERR_INVALID_SHAPE, NSM_ERR_INVALID_LEADING_DIM, NSM_ERR_OVERLAP.
 * ------------------------------------------------------------------------------------------- */
NSM_API nsm_status nsm_softmax_backward_f32(int64_t rows, int64_t cols,
                                            const float* grad_output, int64_t ld_grad_output,
                                            const float* output, int64_t ld_output,
                                            float* grad_logits, int64_t ld_grad_logits);
NSM_API nsm_status nsm_softmax_backward_f64(int64_t rows, int64_t cols,
                                            const double* grad_output, int64_t ld_grad_output,
                                            const double* output, int64_t ld_output,
                                            double* grad_logits, int64_t ld_grad_logits);
NSM_API nsm_status nsm_log_softmax_backward_f32(int64_t rows, int64_t cols,
                                                const float* grad_output, int64_t ld_grad_output,
                                                const float* output, int64_t ld_output,
                                                float* grad_logits, int64_t ld_grad_logits);
NSM_API nsm_status nsm_log_softmax_backward_f64(int64_t rows, int64_t cols,
                                                const double* grad_output, int64_t ld_grad_output,
                                                const double* output, int64_t ld_output,
                                                double* grad_logits, int64_t ld_grad_logits);

/* ---------------------------------------------------------------------------------------------
 * The softmax Jacobian of one row: jacobian[i, j] = ∂o_i/∂z_j = o_i·(δ_ij − o_j), i.e.
 * J = diag(o) − o oᵀ with o = softmax(logits) (docs/derivation.md §2: ∂o_i/∂z_i = o_i − o_i² and
 * ∂o_j/∂z_i = −o_j·o_i); the diagonal is computed as o_i·Σ_{j≠i} o_j, which stays accurate to a
 * few ulp when o_i is close to 1. For verification and small problems: the result is cols × cols.
 * Shapes: logits [cols]; jacobian [cols × cols] with leading dimension ld_jacobian >= cols.
 * Errors: NSM_ERR_NULL_POINTER, NSM_ERR_INVALID_SHAPE, NSM_ERR_INVALID_LEADING_DIM, NSM_ERR_OVERLAP.
 * ------------------------------------------------------------------------------------------- */
NSM_API nsm_status nsm_softmax_jacobian_f32(int64_t cols, const float* logits,
                                            float* jacobian, int64_t ld_jacobian);
NSM_API nsm_status nsm_softmax_jacobian_f64(int64_t cols, const double* logits,
                                            double* jacobian, int64_t ld_jacobian);

/* ---------------------------------------------------------------------------------------------
 * Cross-entropy options. Extensible without breaking the ABI: the caller sets struct_size to
 * sizeof(nsm_cross_entropy_options) as it knew it; the library reads only the fields that size
 * covers and uses the defaults for fields added later. A struct from a newer header is accepted
 * when the fields this library does not know are left at zero. Start from
 * NSM_CROSS_ENTROPY_OPTIONS_INIT. Passing options == NULL means all defaults.
 * Versions: 1 (32 bytes) ends with grad_scale; 2 (40 bytes on 64-bit platforms) adds
 * grad_output. A version-1 struct (struct_size 32) is still accepted: grad_output is then NULL.
 * ------------------------------------------------------------------------------------------- */
typedef int32_t nsm_reduction;
#define NSM_REDUCTION_NONE 0  /**< loss is [rows]: one loss per row. */
#define NSM_REDUCTION_SUM  1  /**< loss is [1]: Σ of the row losses. */
#define NSM_REDUCTION_MEAN 2  /**< loss is [1]: Σ row losses / Σ weight[target[r]] over the rows that
                                   are not ignored (their count without weights); for soft targets
                                   / rows. NaN when that divisor is 0 (every row ignored, or every
                                   label's weight 0), and then so is the gradient of every row that
                                   is not ignored. */

typedef struct nsm_cross_entropy_options {
    uint32_t struct_size;    /**< sizeof(nsm_cross_entropy_options) as the caller compiled it: at least
                                  the size of version 1 (32 bytes). The library reads the fields
                                  that lie wholly within struct_size (a version-1 size leaves
                                  grad_output NULL); every other byte struct_size covers (a newer
                                  header's fields) must be zero, else NSM_ERR_INVALID_ARGUMENT,
                                  whose message names the offset of the first byte that is not.
                                  At most 4096 bytes are read: a larger struct_size is rejected. */
    nsm_reduction reduction; /**< NSM_REDUCTION_{NONE,SUM,MEAN}; default MEAN. */
    int64_t ignore_index;    /**< Hard labels equal to this give 0 loss and 0 gradient; default −100.
                                  Not used with soft targets. */
    double label_smoothing;  /**< ε in [0, 1]: the target becomes (1 − ε)·y + ε/cols; default 0. */
    double grad_scale;       /**< The upstream gradient of the (reduced) loss, PyTorch's grad_output
                                  for a scalar loss; multiplies the whole gradient; default 1.
                                  Must be finite. */
    const void* grad_output; /**< (Version 2.) The upstream gradient of each row's loss, for
                                  reduction none only: NULL (the default) gives every row grad_scale;
                                  else [rows] values of the logits' dtype (float for the _f32
                                  functions, double for _f64), and row r's gradient is multiplied by
                                  grad_output[r]·grad_scale. Values are not checked: they multiply
                                  the row's gradient as they are, NaN and ±inf included (as
                                  PyTorch); an ignored row, or a soft-target row whose targets are
                                  all zero, still gets a zero gradient. The losses do not depend on
                                  it. Errors: NSM_ERR_INVALID_ARGUMENT with reduction sum or mean;
                                  NSM_ERR_OVERLAP when it overlaps loss or grad. */
} nsm_cross_entropy_options;

#define NSM_CROSS_ENTROPY_OPTIONS_INIT \
    { (uint32_t)sizeof(nsm_cross_entropy_options), NSM_REDUCTION_MEAN, -100, 0.0, 1.0, NULL }

/* ---------------------------------------------------------------------------------------------
 * Fused softmax cross-entropy, hard labels (PyTorch's F.cross_entropy with class indices).
 *
 * For row r with label t = target[r], weight w (all ones when weight == NULL), ε = label_smoothing:
 *   lse_r = m_r + log Σ_k exp(z[r, k] − m_r)
 *   loss_r = (1 − ε)·w_t·(lse_r − z[r, t]) + (ε/cols)·Σ_j w_j·(lse_r − z[r, j])
 *   grad[r, i] = s·(o_i·Σ_j y_j − y_i),  y_j = (1 − ε)·w_t·δ_jt + (ε/cols)·w_j
 *   (docs/derivation.md §4–§5: o·Σy − y with the weighted, smoothed target y; = o − y for ε = 0,
 *   w = 1),
 * where s = grad_scale for "sum", grad_scale / Σ_r w_{t_r} for "mean" (NaN when that sum is 0, as
 * the loss), and grad_scale·grad_output[r] for "none" (grad_scale when options->grad_output is
 * NULL).
 * Rows whose label equals ignore_index get loss 0 and a zero gradient row, whatever their logits,
 * and do not count in the mean's divisor. This is PyTorch's normalisation exactly (PyTorch gives
 * a NaN gradient for an ignored row whose logits are all −inf; we give 0). With ε = 0 the smoothing term is absent
 * (not 0·∞), so a −inf logit on another class leaves the loss finite; with ε > 0 it makes the
 * loss +inf, or NaN where its class weight is 0 (as PyTorch).
 *
 * Shapes: logits [rows × cols] (ld_logits); target [rows] int64 class indices in [0, cols) or
 * ignore_index; weight NULL or [cols]; loss [rows] for reduction none, else [1], or NULL when only
 * the gradient is wanted; grad NULL (no gradient) or [rows × cols] (ld_grad).
 * In place: grad may be exactly logits (the logits are then overwritten by their gradient).
 * Weights: any finite value is accepted, negative included (as PyTorch); NaN or ±inf weights are
 * rejected with NSM_ERR_INVALID_ARGUMENT.
 * Errors: NSM_ERR_NULL_POINTER (logits, target, or both loss and grad NULL),
 *         NSM_ERR_INVALID_SHAPE, NSM_ERR_INVALID_LEADING_DIM,
 *         NSM_ERR_LABEL_OUT_OF_RANGE (checked for every row before anything is written),
 *         NSM_ERR_INVALID_ARGUMENT (reduction, label_smoothing outside [0, 1] or NaN, weight,
 *         grad_scale, grad_output with a reduction other than none, struct_size), NSM_ERR_OVERLAP.
 * Accuracy (float32): with unit weights, row losses within 2e-6·(1 + |exact|); with weights,
 * within 2e-6·Σ_j |y_j|·(1 + |lse − z_j|) (the size of the terms summed); gradients within
 * 1e-6·|s|·Σ_j |y_j| absolute.
 * ------------------------------------------------------------------------------------------- */
NSM_API nsm_status nsm_cross_entropy_f32(int64_t rows, int64_t cols,
                                         const float* logits, int64_t ld_logits,
                                         const int64_t* target,
                                         const float* weight,
                                         const nsm_cross_entropy_options* options,
                                         float* loss,
                                         float* grad, int64_t ld_grad);
NSM_API nsm_status nsm_cross_entropy_f64(int64_t rows, int64_t cols,
                                         const double* logits, int64_t ld_logits,
                                         const int64_t* target,
                                         const double* weight,
                                         const nsm_cross_entropy_options* options,
                                         double* loss,
                                         double* grad, int64_t ld_grad);

/* ---------------------------------------------------------------------------------------------
 * Fused softmax cross-entropy, soft targets (PyTorch's F.cross_entropy with class probabilities).
 *
 * For row r with targets p = target[r, :], ŷ_j = ((1 − ε)·p_j + ε/cols)·w_j:
 *   loss_r = Σ_j ŷ_j·(lse_r − z[r, j])        (terms with ŷ_j == 0 contribute 0, as xlogy: this is
 *                                              where we differ from PyTorch, which gives NaN for a
 *                                              zero target on a −inf logit)
 *   grad[r, i] = s·(o_i·Σ_j ŷ_j − ŷ_i)         (docs/derivation.md §4, the general form: exact
 *                                              even when the targets do not sum to 1)
 * s = grad_scale for "sum", grad_scale / rows for "mean" (PyTorch divides soft-target means by the
 * number of rows, weighted or not), grad_scale·grad_output[r] for "none" (as for hard labels). A row whose ŷ are all zero gives loss 0 and a
 * zero gradient whatever its logits (this wins over the NaN-row rule: an all −inf row with an
 * all-zero target is 0, not NaN). ignore_index is not used. Targets may be any finite or non-finite values; they are
 * not checked (a NaN target gives a NaN loss).
 *
 * Shapes: logits [rows × cols] (ld_logits); target [rows × cols] (ld_target); weight, loss, grad
 * as for nsm_cross_entropy_f32. In place: grad may be exactly logits or exactly target.
 * Errors: as nsm_cross_entropy_f32, without NSM_ERR_LABEL_OUT_OF_RANGE.
 * ------------------------------------------------------------------------------------------- */
NSM_API nsm_status nsm_cross_entropy_soft_f32(int64_t rows, int64_t cols,
                                              const float* logits, int64_t ld_logits,
                                              const float* target, int64_t ld_target,
                                              const float* weight,
                                              const nsm_cross_entropy_options* options,
                                              float* loss,
                                              float* grad, int64_t ld_grad);
NSM_API nsm_status nsm_cross_entropy_soft_f64(int64_t rows, int64_t cols,
                                              const double* logits, int64_t ld_logits,
                                              const double* target, int64_t ld_target,
                                              const double* weight,
                                              const nsm_cross_entropy_options* options,
                                              double* loss,
                                              double* grad, int64_t ld_grad);

/* ---------------------------------------------------------------------------------------------
 * Vocabulary-split cross-entropy: the cross-entropy of rows whose classes (the vocabulary) are
 * split into shards of columns, held by different processes (vocabulary-parallel training) or
 * computed block by block and never held at once (chunked cross-entropy). Three steps
 * (docs/derivation.md §7):
 *   1. partial: each shard computes per-row statistics (nsm_cross_entropy_stats) of its columns;
 *   2. merge:   the statistics of all shards are merged (after an all-gather, an all-reduce with a
 *               custom operation, or one block after another), in a fixed order;
 *   3. finish:  each shard computes the loss and its columns of the gradient from the merged
 *               statistics and its logits again.
 * A shard is columns [first_col, first_col + cols) of a vocabulary of `vocab` columns, given as a
 * [rows × cols] matrix with its own leading dimension; cols may be 0 (an empty shard: its
 * statistics are the identity of the merge). Hard labels are class indices of the whole
 * vocabulary (every shard gets all of them); soft targets, weight and grad are the shard's
 * columns. label_smoothing spreads ε/vocab over the whole vocabulary. Pass the same options to
 * the partial and the finish calls.
 *
 * Results: with the statistics of every column of the vocabulary merged, the loss and the
 * gradient are those of nsm_cross_entropy_f32/_f64 (nsm_cross_entropy_soft_*) on the whole
 * matrix, within that function's stated accuracy of the exact value (the rounding differs from
 * the unsplit call's: each shard's sum is taken relative to its own maximum and rescaled by
 * exp(m − M) in float64). A dominant class keeps its
 * relative accuracy (the count at the maximum is carried apart). The same split, merged in the
 * same order, gives the same bits, whatever the thread count; every shard's finish call gives
 * the same loss, bit for bit (the loss depends only on the merged statistics, the labels and the
 * options, and is added in row order).
 *
 * nsm_cross_entropy_stats: one row's statistics over the columns seen, seven float64 values,
 * 56 bytes, no padding; an array of them is a [rows × 7] float64 matrix that any
 * engine can gather (MPI_DOUBLE, torch.float64, ncclFloat64). With y_j the weighted, smoothed
 * target of column j (hard label t: (1 − ε)·w_t·[j = t] + (ε/vocab)·w_j; soft: ((1 − ε)·p_j +
 * ε/vocab)·w_j) and m = max:
 *   log Σ_j exp(z_j) = m + log1p(sum_below_max + count_at_max − 1)
 *   loss = target_gaps + target_sum·log Σ_j exp(z_j − m)      (NaN when count_at_max == 0)
 * The identity (no column) is {−inf, 0, 0, 0, 0, 0, 0}. Ignored rows (hard label ignore_index)
 * get the identity from partial; finish gives them loss 0 and a zero gradient.
 * ------------------------------------------------------------------------------------------- */
typedef struct nsm_cross_entropy_stats {
    double max;           /**< m: the largest logit of the columns seen; −inf for none. */
    double count_at_max;  /**< How many exp(z_j − m) are exactly 1 (the logits at the maximum),
                               when Σ exp(z_j − m) < 2; for a larger total (where keeping the 1s
                               apart adds no accuracy) a shard may give 1 here and the rest in
                               sum_below_max. Only the total count_at_max + sum_below_max is
                               defined on its own; it is ≥ 1 for a row seen and not NaN. */
    double sum_below_max; /**< Σ exp(z_j − m) over the other columns seen (see count_at_max). */
    double target_sum;    /**< Σ_j y_j over the columns seen. */
    double target_gaps;   /**< Σ_j y_j·(m − z_j) over the columns seen (≥ 0 for weights ≥ 0). */
    double label_weight;  /**< Hard labels: w_t (1 without weights) when the label is among the
                               columns seen, else 0 (the row's part of the mean's divisor). Soft
                               targets: 0. */
    double has_target;    /**< Soft targets: 1 when some y_j of the columns seen is not 0, else 0
                               (a row whose targets are all 0 gives loss 0, gradient 0). Hard
                               labels: 0. */
} nsm_cross_entropy_stats;

/* Partial: stats[r] = the statistics of row r over the shard's columns.
 * Shapes: logits [rows × cols] (ld_logits >= cols; >= 0 when cols == 0); target [rows] int64
 * class indices in [0, vocab) or ignore_index (hard), or [rows × cols] (ld_target) (soft); weight
 * NULL or [cols] (the shard's class weights); stats [rows].
 * Pointers: logits, soft target and weight are not read when cols == 0 (may be NULL).
 * Errors: NSM_ERR_NULL_POINTER, NSM_ERR_INVALID_SHAPE (rows < 0, vocab < 1, cols outside
 *         [0, vocab], first_col outside [0, vocab − cols]), NSM_ERR_INVALID_LEADING_DIM,
 *         NSM_ERR_LABEL_OUT_OF_RANGE (hard labels; every row checked before anything is written),
 *         NSM_ERR_INVALID_ARGUMENT (as nsm_cross_entropy_f32: options, weight),
 *         NSM_ERR_OVERLAP (stats overlapping an input). */
NSM_API nsm_status nsm_cross_entropy_partial_f32(int64_t rows, int64_t cols, int64_t first_col, int64_t vocab,
                                                 const float* logits, int64_t ld_logits,
                                                 const int64_t* target, const float* weight,
                                                 const nsm_cross_entropy_options* options,
                                                 nsm_cross_entropy_stats* stats);
NSM_API nsm_status nsm_cross_entropy_partial_f64(int64_t rows, int64_t cols, int64_t first_col, int64_t vocab,
                                                 const double* logits, int64_t ld_logits,
                                                 const int64_t* target, const double* weight,
                                                 const nsm_cross_entropy_options* options,
                                                 nsm_cross_entropy_stats* stats);
NSM_API nsm_status nsm_cross_entropy_partial_soft_f32(int64_t rows, int64_t cols, int64_t first_col, int64_t vocab,
                                                      const float* logits, int64_t ld_logits,
                                                      const float* target, int64_t ld_target,
                                                      const float* weight,
                                                      const nsm_cross_entropy_options* options,
                                                      nsm_cross_entropy_stats* stats);
NSM_API nsm_status nsm_cross_entropy_partial_soft_f64(int64_t rows, int64_t cols, int64_t first_col, int64_t vocab,
                                                      const double* logits, int64_t ld_logits,
                                                      const double* target, int64_t ld_target,
                                                      const double* weight,
                                                      const nsm_cross_entropy_options* options,
                                                      nsm_cross_entropy_stats* stats);

/* Merge: merged[r] = a[r] ⊕ b[r], the statistics of the union of two disjoint sets of columns of
 * row r: the larger maximum M is kept, the other side's exponentials are rescaled by exp(m − M)
 * and its gaps by (M − m)·target_sum (docs/derivation.md §7). Merging with the identity returns
 * the other operand bit for bit; the merge is commutative and associative up to rounding and
 * deterministic, so a fixed order (e.g. rank order) gives the same bits on every process.
 * In place: merged may be exactly a or exactly b. rows == 0: nothing is read or written.
 * Errors: NSM_ERR_NULL_POINTER, NSM_ERR_INVALID_SHAPE (rows < 0 or too large), NSM_ERR_OVERLAP. */
NSM_API nsm_status nsm_cross_entropy_merge(int64_t rows, const nsm_cross_entropy_stats* a,
                                           const nsm_cross_entropy_stats* b,
                                           nsm_cross_entropy_stats* merged);

/* Finish: from stats (merged over the whole vocabulary) and the shard's logits, the loss (every
 * reduction, as nsm_cross_entropy_f32: "mean" divides by Σ label_weight over the rows not
 * ignored for hard labels, by rows for soft targets) and the shard's columns of the gradient
 * s·(o_j·Σy − y_j), s as for nsm_cross_entropy_f32 (grad_scale, the mean's divisor, grad_output).
 * Shapes: as partial, plus stats [rows]; loss [rows] for reduction none, else [1], or NULL;
 * grad NULL or [rows × cols] (ld_grad).
 * In place: grad may be exactly logits (and, soft targets, exactly target).
 * Errors: as partial, plus NSM_ERR_NULL_POINTER for stats, or loss and grad both NULL, and
 *         NSM_ERR_OVERLAP for outputs overlapping an input or each other. */
NSM_API nsm_status nsm_cross_entropy_finish_f32(int64_t rows, int64_t cols, int64_t first_col, int64_t vocab,
                                                const float* logits, int64_t ld_logits,
                                                const int64_t* target, const float* weight,
                                                const nsm_cross_entropy_stats* stats,
                                                const nsm_cross_entropy_options* options,
                                                float* loss, float* grad, int64_t ld_grad);
NSM_API nsm_status nsm_cross_entropy_finish_f64(int64_t rows, int64_t cols, int64_t first_col, int64_t vocab,
                                                const double* logits, int64_t ld_logits,
                                                const int64_t* target, const double* weight,
                                                const nsm_cross_entropy_stats* stats,
                                                const nsm_cross_entropy_options* options,
                                                double* loss, double* grad, int64_t ld_grad);
NSM_API nsm_status nsm_cross_entropy_finish_soft_f32(int64_t rows, int64_t cols, int64_t first_col, int64_t vocab,
                                                     const float* logits, int64_t ld_logits,
                                                     const float* target, int64_t ld_target,
                                                     const float* weight,
                                                     const nsm_cross_entropy_stats* stats,
                                                     const nsm_cross_entropy_options* options,
                                                     float* loss, float* grad, int64_t ld_grad);
NSM_API nsm_status nsm_cross_entropy_finish_soft_f64(int64_t rows, int64_t cols, int64_t first_col, int64_t vocab,
                                                     const double* logits, int64_t ld_logits,
                                                     const double* target, int64_t ld_target,
                                                     const double* weight,
                                                     const nsm_cross_entropy_stats* stats,
                                                     const nsm_cross_entropy_options* options,
                                                     double* loss, double* grad, int64_t ld_grad);

/* ---------------------------------------------------------------------------------------------
 * Half precision: bfloat16 (_bf16) and float16 (_f16) for every operation above.
 *
 * nsm_bfloat16 holds the bits of a bfloat16 (the upper 16 bits of a float32: 1 sign, 8 exponent,
 * 7 mantissa bits; torch.bfloat16), nsm_float16 those of an IEEE 754 binary16 (1, 5, 10; numpy
 * float16, torch.float16, _Float16). Each is a struct of one uint16_t rather than a bare uint16_t
 * so that the compiler rejects float16 data passed to a bfloat16 function, or a float* or
 * uint16_t* passed to either: the two formats have the same size and a mix-up would otherwise
 * compute garbage silently. Cast a pointer to your own 16-bit data (C: (const nsm_bfloat16*)p;
 * C++: reinterpret_cast) where it holds the right format.
 *
 * Storage in half precision, computation in float32: every input is widened to float32 exactly,
 * the float32 operation runs (the same code as the _f32 functions), and every 16-bit output is
 * rounded once from its float32 value to the nearest value of its type, ties to even; a float32
 * beyond the type's largest finite value rounds to ±inf, NaN stays NaN. Flush rule for the
 * 16-bit outputs: a rounded result whose magnitude is below the type's smallest normal number
 * (2^−126 for bfloat16, 2^−14 ≈ 6.1e-5 for float16) is stored as 0 of the same sign, so no 16-bit
 * output is subnormal. Subnormal 16-bit inputs are read as they are.
 *
 * Cross-entropy: the logits, the soft targets and grad are of the 16-bit type; weight, loss and
 * options->grad_output are float32 (the loss keeps float32's accuracy; the reduced loss is formed
 * in float64 and rounded to float32 once).
 *
 * Accuracy: each 16-bit output is within 1 ulp of its type (at the exact value's magnitude) of
 * the float64 result on the same 16-bit inputs, beyond a float32 bound: for softmax, log_softmax
 * and cross-entropy the one stated for the _f32 function; for softmax_backward
 * 1e-6·|o_i|·(|g_i| + Σ_j |g_j·o_j|), for log_softmax_backward 1e-6·(|g_i| + o_i·Σ_j |g_j|)
 * (o_i = exp(log_o_i)), for the Jacobian 2e-6·o_i·(δ_ij + o_j), all absolute: where g − ⟨g, o⟩
 * cancels, the result may be many ulp of the type away from the exact value but stays within
 * that bound. The float32 losses are within the _f32 bounds. Results do not depend on the thread
 * count (bitwise), as for the other functions.
 *
 * Shapes, leading dimensions (in elements), in place, NULL pointers and errors: exactly as for
 * the _f32 function of the same name; the overlap checks compare the bytes each argument spans.
 * Memory: each thread that runs a half-precision call keeps a float32 scratch for the block of
 * rows it converts (about 16384 elements, or one row when rows are longer; twice that for two
 * 16-bit inputs; cols·(cols + 1) for the Jacobian), allocated on the heap and reused by its later
 * calls, and freed after the thread ends as the tiles' scratch above.
 * ------------------------------------------------------------------------------------------- */
typedef struct nsm_bfloat16 {
    uint16_t bits;
} nsm_bfloat16;

typedef struct nsm_float16 {
    uint16_t bits;
} nsm_float16;

NSM_API nsm_status nsm_softmax_bf16(int64_t rows, int64_t cols,
                                    const nsm_bfloat16* logits, int64_t ld_logits,
                                    nsm_bfloat16* probabilities, int64_t ld_probabilities);
NSM_API nsm_status nsm_log_softmax_bf16(int64_t rows, int64_t cols,
                                        const nsm_bfloat16* logits, int64_t ld_logits,
                                        nsm_bfloat16* log_probabilities, int64_t ld_log_probabilities);
NSM_API nsm_status nsm_softmax_backward_bf16(int64_t rows, int64_t cols,
                                             const nsm_bfloat16* grad_output, int64_t ld_grad_output,
                                             const nsm_bfloat16* output, int64_t ld_output,
                                             nsm_bfloat16* grad_logits, int64_t ld_grad_logits);
NSM_API nsm_status nsm_log_softmax_backward_bf16(int64_t rows, int64_t cols,
                                                 const nsm_bfloat16* grad_output, int64_t ld_grad_output,
                                                 const nsm_bfloat16* output, int64_t ld_output,
                                                 nsm_bfloat16* grad_logits, int64_t ld_grad_logits);
NSM_API nsm_status nsm_softmax_jacobian_bf16(int64_t cols, const nsm_bfloat16* logits,
                                             nsm_bfloat16* jacobian, int64_t ld_jacobian);
NSM_API nsm_status nsm_cross_entropy_bf16(int64_t rows, int64_t cols,
                                          const nsm_bfloat16* logits, int64_t ld_logits,
                                          const int64_t* target,
                                          const float* weight,
                                          const nsm_cross_entropy_options* options,
                                          float* loss,
                                          nsm_bfloat16* grad, int64_t ld_grad);
NSM_API nsm_status nsm_cross_entropy_soft_bf16(int64_t rows, int64_t cols,
                                               const nsm_bfloat16* logits, int64_t ld_logits,
                                               const nsm_bfloat16* target, int64_t ld_target,
                                               const float* weight,
                                               const nsm_cross_entropy_options* options,
                                               float* loss,
                                               nsm_bfloat16* grad, int64_t ld_grad);

NSM_API nsm_status nsm_softmax_f16(int64_t rows, int64_t cols,
                                    const nsm_float16* logits, int64_t ld_logits,
                                    nsm_float16* probabilities, int64_t ld_probabilities);
NSM_API nsm_status nsm_log_softmax_f16(int64_t rows, int64_t cols,
                                        const nsm_float16* logits, int64_t ld_logits,
                                        nsm_float16* log_probabilities, int64_t ld_log_probabilities);
NSM_API nsm_status nsm_softmax_backward_f16(int64_t rows, int64_t cols,
                                             const nsm_float16* grad_output, int64_t ld_grad_output,
                                             const nsm_float16* output, int64_t ld_output,
                                             nsm_float16* grad_logits, int64_t ld_grad_logits);
NSM_API nsm_status nsm_log_softmax_backward_f16(int64_t rows, int64_t cols,
                                                 const nsm_float16* grad_output, int64_t ld_grad_output,
                                                 const nsm_float16* output, int64_t ld_output,
                                                 nsm_float16* grad_logits, int64_t ld_grad_logits);
NSM_API nsm_status nsm_softmax_jacobian_f16(int64_t cols, const nsm_float16* logits,
                                             nsm_float16* jacobian, int64_t ld_jacobian);
NSM_API nsm_status nsm_cross_entropy_f16(int64_t rows, int64_t cols,
                                          const nsm_float16* logits, int64_t ld_logits,
                                          const int64_t* target,
                                          const float* weight,
                                          const nsm_cross_entropy_options* options,
                                          float* loss,
                                          nsm_float16* grad, int64_t ld_grad);
NSM_API nsm_status nsm_cross_entropy_soft_f16(int64_t rows, int64_t cols,
                                               const nsm_float16* logits, int64_t ld_logits,
                                               const nsm_float16* target, int64_t ld_target,
                                               const float* weight,
                                               const nsm_cross_entropy_options* options,
                                               float* loss,
                                               nsm_float16* grad, int64_t ld_grad);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* NATIVESOFTMAX_H */
