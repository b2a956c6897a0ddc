/*
 * dispatch.c — libnativesoftmax.so, the one library that C programs and the Python binding link.
 *
 * The computing code lives in per-instruction-set builds of the NativeAOT library that sit next
 * to this file (docs/design.md §4):
 *
 *     x86-64:   libnativesoftmax_avx512.so  (x86-64-v4)
 *               libnativesoftmax_avx2.so    (x86-64-v3)
 *               libnativesoftmax_sse42.so   (x86-64-v2)
 *     aarch64:  libnativesoftmax_neon.so
 *
 * When this library is loaded, a constructor records the absolute directory of its own file
 * (symbolic links resolved), so a program that loads it by a relative path and then changes
 * directory still finds the variants beside it. On the first call (pthread_once) we ask the CPU
 * which levels it supports, cap the choice with NATIVESOFTMAX_MAX_ISA, and load the best variant
 * that passes every check below, trying the next lower one when a file is missing or refused.
 * A variant is never loaded on a CPU that lacks its instruction set: an x86-64-v4 NativeAOT build
 * aborts the process there.
 *
 * A candidate file is read before dlopen() sees it, because dlopen() cannot survive every broken
 * file: a file cut short dies with SIGBUS when the loader touches a segment past its end (or, cut
 * inside its last page, runs with zeros where its data should be). We refuse, with the reason in
 * the message, a file that
 *   - is this dispatcher itself (a link to it; calling it as a variant would deadlock in g_once),
 *   - is not a 64-bit little-endian ELF shared library for this machine,
 *   - is shorter than a loadable segment (p_offset + p_filesz of every PT_LOAD must lie in it),
 *   - does not name the variant marker of our version among its dynamic symbols:
 *     nsm_variant_v<NSM_VERSION_NUMBER>, exported only by the variants (VariantMarker.cs). A file
 *     with another version's marker is a variant of another release; a file with none (a copy of
 *     the dispatcher, any other library) is no variant at all.
 * After dlopen() the marker must also be found by dlsym(). Nothing in a candidate is called before
 * it is accepted: its version is read from the marker's name, so a refused variant never starts its
 * NativeAOT runtime. And nothing is ever dlclose()d: a variant whose runtime has started must stay
 * mapped while its threads run (the variants are also linked with -z nodelete).
 *
 * Stack and thread-local storage are kept small, so the first call may come from a thread with a
 * small stack: paths and file contents live on the heap or in static storage, and the
 * per-thread data are one byte and the address of the thread's entry slot (a cache line on the
 * heap; see "fork() while another thread is inside a call").
 *
 * Every function of nativesoftmax.h is defined here and nothing else is exported (the build uses
 * -fvisibility=hidden; NSM_API marks the header's functions "default"). The operations forward to
 * the variant. nsm_status_string and the version functions are answered here, so they work even
 * when no variant can run; a variant whose version differs from ours is refused, so the answer is
 * also the loaded library's. nsm_last_error forwards to the variant, or gives the reason no
 * variant loaded (after a failed call on the calling thread) when none is loaded.
 */
#define _GNU_SOURCE /* dladdr, memmem */
#include "nativesoftmax.h"

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#if __has_include(<linux/membarrier.h>)
#include <linux/membarrier.h> /* its commands are enum constants: NSM_HAVE_MEMBARRIER says they are there */
#define NSM_HAVE_MEMBARRIER 1
#endif

#if defined(__x86_64__) && defined(__clang__)
#include <cpuid.h>
#endif
#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

/* The half-precision operations (nsm_<op>_bf16, nsm_<op>_f16), forwarded as the others. */
#define NSM_HALF_PRECISION_OPERATIONS(X) \
    X(nsm_softmax_bf16, (int64_t rows, int64_t cols, const nsm_bfloat16* logits, int64_t ld_logits, nsm_bfloat16* probabilities, int64_t ld_probabilities), (rows, cols, logits, ld_logits, probabilities, ld_probabilities)) \
    X(nsm_log_softmax_bf16, (int64_t rows, int64_t cols, const nsm_bfloat16* logits, int64_t ld_logits, nsm_bfloat16* log_probabilities, int64_t ld_log_probabilities), (rows, cols, logits, ld_logits, log_probabilities, ld_log_probabilities)) \
    X(nsm_softmax_backward_bf16, (int64_t rows, int64_t cols, const nsm_bfloat16* grad_output, int64_t ld_grad_output, const nsm_bfloat16* output, int64_t ld_output, nsm_bfloat16* grad_logits, int64_t ld_grad_logits), (rows, cols, grad_output, ld_grad_output, output, ld_output, grad_logits, ld_grad_logits)) \
    X(nsm_log_softmax_backward_bf16, (int64_t rows, int64_t cols, const nsm_bfloat16* grad_output, int64_t ld_grad_output, const nsm_bfloat16* output, int64_t ld_output, nsm_bfloat16* grad_logits, int64_t ld_grad_logits), (rows, cols, grad_output, ld_grad_output, output, ld_output, grad_logits, ld_grad_logits)) \
    X(nsm_softmax_jacobian_bf16, (int64_t cols, const nsm_bfloat16* logits, nsm_bfloat16* jacobian, int64_t ld_jacobian), (cols, logits, jacobian, ld_jacobian)) \
    X(nsm_cross_entropy_bf16, (int64_t rows, int64_t cols, const nsm_bfloat16* logits, int64_t ld_logits, const int64_t* target, const float* weight, const nsm_cross_entropy_options* options, float* loss, nsm_bfloat16* grad, int64_t ld_grad), (rows, cols, logits, ld_logits, target, weight, options, loss, grad, ld_grad)) \
    X(nsm_cross_entropy_soft_bf16, (int64_t rows, int64_t cols, const nsm_bfloat16* logits, int64_t ld_logits, const nsm_bfloat16* target, int64_t ld_target, const float* weight, const nsm_cross_entropy_options* options, float* loss, nsm_bfloat16* grad, int64_t ld_grad), (rows, cols, logits, ld_logits, target, ld_target, weight, options, loss, grad, ld_grad)) \
    X(nsm_softmax_f16, (int64_t rows, int64_t cols, const nsm_float16* logits, int64_t ld_logits, nsm_float16* probabilities, int64_t ld_probabilities), (rows, cols, logits, ld_logits, probabilities, ld_probabilities)) \
    X(nsm_log_softmax_f16, (int64_t rows, int64_t cols, const nsm_float16* logits, int64_t ld_logits, nsm_float16* log_probabilities, int64_t ld_log_probabilities), (rows, cols, logits, ld_logits, log_probabilities, ld_log_probabilities)) \
    X(nsm_softmax_backward_f16, (int64_t rows, int64_t cols, const nsm_float16* grad_output, int64_t ld_grad_output, const nsm_float16* output, int64_t ld_output, nsm_float16* grad_logits, int64_t ld_grad_logits), (rows, cols, grad_output, ld_grad_output, output, ld_output, grad_logits, ld_grad_logits)) \
    X(nsm_log_softmax_backward_f16, (int64_t rows, int64_t cols, const nsm_float16* grad_output, int64_t ld_grad_output, const nsm_float16* output, int64_t ld_output, nsm_float16* grad_logits, int64_t ld_grad_logits), (rows, cols, grad_output, ld_grad_output, output, ld_output, grad_logits, ld_grad_logits)) \
    X(nsm_softmax_jacobian_f16, (int64_t cols, const nsm_float16* logits, nsm_float16* jacobian, int64_t ld_jacobian), (cols, logits, jacobian, ld_jacobian)) \
    X(nsm_cross_entropy_f16, (int64_t rows, int64_t cols, const nsm_float16* logits, int64_t ld_logits, const int64_t* target, const float* weight, const nsm_cross_entropy_options* options, float* loss, nsm_float16* grad, int64_t ld_grad), (rows, cols, logits, ld_logits, target, weight, options, loss, grad, ld_grad)) \
    X(nsm_cross_entropy_soft_f16, (int64_t rows, int64_t cols, const nsm_float16* logits, int64_t ld_logits, const nsm_float16* target, int64_t ld_target, const float* weight, const nsm_cross_entropy_options* options, float* loss, nsm_float16* grad, int64_t ld_grad), (rows, cols, logits, ld_logits, target, ld_target, weight, options, loss, grad, ld_grad))

/* The operations forwarded to the variant: X(name, (parameters), (arguments)). */
#define NSM_FORWARDED_OPERATIONS(X)                                                                 \
    X(nsm_set_num_threads, (int32_t num_threads), (num_threads))                                   \
    X(nsm_softmax_f32,                                                                              \
      (int64_t rows, int64_t cols, const float* logits, int64_t ld_logits, float* probabilities,   \
       int64_t ld_probabilities),                                                                   \
      (rows, cols, logits, ld_logits, probabilities, ld_probabilities))                            \
    X(nsm_softmax_f64,                                                                              \
      (int64_t rows, int64_t cols, const double* logits, int64_t ld_logits, double* probabilities, \
       int64_t ld_probabilities),                                                                   \
      (rows, cols, logits, ld_logits, probabilities, ld_probabilities))                            \
    X(nsm_log_softmax_f32,                                                                          \
      (int64_t rows, int64_t cols, const float* logits, int64_t ld_logits,                         \
       float* log_probabilities, int64_t ld_log_probabilities),                                    \
      (rows, cols, logits, ld_logits, log_probabilities, ld_log_probabilities))                    \
    X(nsm_log_softmax_f64,                                                                          \
      (int64_t rows, int64_t cols, const double* logits, int64_t ld_logits,                        \
       double* log_probabilities, int64_t ld_log_probabilities),                                   \
      (rows, cols, logits, ld_logits, log_probabilities, ld_log_probabilities))                    \
    X(nsm_softmax_backward_f32,                                                                     \
      (int64_t rows, int64_t cols, const float* grad_output, int64_t ld_grad_output,               \
       const float* output, int64_t ld_output, float* grad_logits, int64_t ld_grad_logits),        \
      (rows, cols, grad_output, ld_grad_output, output, ld_output, grad_logits, ld_grad_logits))   \
    X(nsm_softmax_backward_f64,                                                                     \
      (int64_t rows, int64_t cols, const double* grad_output, int64_t ld_grad_output,              \
       const double* output, int64_t ld_output, double* grad_logits, int64_t ld_grad_logits),      \
      (rows, cols, grad_output, ld_grad_output, output, ld_output, grad_logits, ld_grad_logits))   \
    X(nsm_log_softmax_backward_f32,                                                                 \
      (int64_t rows, int64_t cols, const float* grad_output, int64_t ld_grad_output,               \
       const float* output, int64_t ld_output, float* grad_logits, int64_t ld_grad_logits),        \
      (rows, cols, grad_output, ld_grad_output, output, ld_output, grad_logits, ld_grad_logits))   \
    X(nsm_log_softmax_backward_f64,                                                                 \
      (int64_t rows, int64_t cols, const double* grad_output, int64_t ld_grad_output,              \
       const double* output, int64_t ld_output, double* grad_logits, int64_t ld_grad_logits),      \
      (rows, cols, grad_output, ld_grad_output, output, ld_output, grad_logits, ld_grad_logits))   \
    X(nsm_softmax_jacobian_f32,                                                                     \
      (int64_t cols, const float* logits, float* jacobian, int64_t ld_jacobian),                   \
      (cols, logits, jacobian, ld_jacobian))                                                        \
    X(nsm_softmax_jacobian_f64,                                                                     \
      (int64_t cols, const double* logits, double* jacobian, int64_t ld_jacobian),                 \
      (cols, logits, jacobian, ld_jacobian))                                                        \
    X(nsm_cross_entropy_f32,                                                                        \
      (int64_t rows, int64_t cols, const float* logits, int64_t ld_logits, const int64_t* target,  \
       const float* weight, const nsm_cross_entropy_options* options, float* loss, float* grad,    \
       int64_t ld_grad),                                                                            \
      (rows, cols, logits, ld_logits, target, weight, options, loss, grad, ld_grad))               \
    X(nsm_cross_entropy_f64,                                                                        \
      (int64_t rows, int64_t cols, const double* logits, int64_t ld_logits, const int64_t* target, \
       const double* weight, const nsm_cross_entropy_options* options, double* loss, double* grad, \
       int64_t ld_grad),                                                                            \
      (rows, cols, logits, ld_logits, target, weight, options, loss, grad, ld_grad))               \
    X(nsm_cross_entropy_soft_f32,                                                                   \
      (int64_t rows, int64_t cols, const float* logits, int64_t ld_logits, const float* target,    \
       int64_t ld_target, const float* weight, const nsm_cross_entropy_options* options,           \
       float* loss, float* grad, int64_t ld_grad),                                                  \
      (rows, cols, logits, ld_logits, target, ld_target, weight, options, loss, grad, ld_grad))    \
    X(nsm_cross_entropy_soft_f64,                                                                   \
      (int64_t rows, int64_t cols, const double* logits, int64_t ld_logits, const double* target,  \
       int64_t ld_target, const double* weight, const nsm_cross_entropy_options* options,          \
       double* loss, double* grad, int64_t ld_grad),                                                \
      (rows, cols, logits, ld_logits, target, ld_target, weight, options, loss, grad, ld_grad))   \
    NSM_VOCABULARY_SPLIT_OPERATIONS(X)                                                              \
    NSM_HALF_PRECISION_OPERATIONS(X)

/* The vocabulary-split cross-entropy (nsm_cross_entropy_partial_*, _merge, _finish_*). */
#define NSM_VOCABULARY_SPLIT_OPERATIONS(X)                                                          \
    X(nsm_cross_entropy_partial_f32,                                                                \
      (int64_t rows, int64_t cols, int64_t first_col, int64_t vocab, const float* logits,          \
       int64_t ld_logits, const int64_t* target, const float* weight,                              \
       const nsm_cross_entropy_options* options, nsm_cross_entropy_stats* stats),                  \
      (rows, cols, first_col, vocab, logits, ld_logits, target, weight, options, stats))           \
    X(nsm_cross_entropy_partial_f64,                                                                \
      (int64_t rows, int64_t cols, int64_t first_col, int64_t vocab, const double* logits,         \
       int64_t ld_logits, const int64_t* target, const double* weight,                             \
       const nsm_cross_entropy_options* options, nsm_cross_entropy_stats* stats),                  \
      (rows, cols, first_col, vocab, logits, ld_logits, target, weight, options, stats))           \
    X(nsm_cross_entropy_partial_soft_f32,                                                           \
      (int64_t rows, int64_t cols, int64_t first_col, int64_t vocab, const float* logits,          \
       int64_t ld_logits, const float* target, int64_t ld_target, const float* weight,            \
       const nsm_cross_entropy_options* options, nsm_cross_entropy_stats* stats),                  \
      (rows, cols, first_col, vocab, logits, ld_logits, target, ld_target, weight, options, stats)) \
    X(nsm_cross_entropy_partial_soft_f64,                                                           \
      (int64_t rows, int64_t cols, int64_t first_col, int64_t vocab, const double* logits,         \
       int64_t ld_logits, const double* target, int64_t ld_target, const double* weight,          \
       const nsm_cross_entropy_options* options, nsm_cross_entropy_stats* stats),                  \
      (rows, cols, first_col, vocab, logits, ld_logits, target, ld_target, weight, options, stats)) \
    X(nsm_cross_entropy_merge,                                                                      \
      (int64_t rows, const nsm_cross_entropy_stats* a, const nsm_cross_entropy_stats* b,           \
       nsm_cross_entropy_stats* merged),                                                            \
      (rows, a, b, merged))                                                                         \
    X(nsm_cross_entropy_finish_f32,                                                                 \
      (int64_t rows, int64_t cols, int64_t first_col, int64_t vocab, const float* logits,          \
       int64_t ld_logits, const int64_t* target, const float* weight,                              \
       const nsm_cross_entropy_stats* stats, const nsm_cross_entropy_options* options,             \
       float* loss, float* grad, int64_t ld_grad),                                                  \
      (rows, cols, first_col, vocab, logits, ld_logits, target, weight, stats, options, loss,      \
       grad, ld_grad))                                                                              \
    X(nsm_cross_entropy_finish_f64,                                                                 \
      (int64_t rows, int64_t cols, int64_t first_col, int64_t vocab, const double* logits,         \
       int64_t ld_logits, const int64_t* target, const double* weight,                             \
       const nsm_cross_entropy_stats* stats, const nsm_cross_entropy_options* options,             \
       double* loss, double* grad, int64_t ld_grad),                                                \
      (rows, cols, first_col, vocab, logits, ld_logits, target, weight, stats, options, loss,      \
       grad, ld_grad))                                                                              \
    X(nsm_cross_entropy_finish_soft_f32,                                                            \
      (int64_t rows, int64_t cols, int64_t first_col, int64_t vocab, const float* logits,          \
       int64_t ld_logits, const float* target, int64_t ld_target, const float* weight,            \
       const nsm_cross_entropy_stats* stats, const nsm_cross_entropy_options* options,             \
       float* loss, float* grad, int64_t ld_grad),                                                  \
      (rows, cols, first_col, vocab, logits, ld_logits, target, ld_target, weight, stats, options, \
       loss, grad, ld_grad))                                                                        \
    X(nsm_cross_entropy_finish_soft_f64,                                                            \
      (int64_t rows, int64_t cols, int64_t first_col, int64_t vocab, const double* logits,         \
       int64_t ld_logits, const double* target, int64_t ld_target, const double* weight,          \
       const nsm_cross_entropy_stats* stats, const nsm_cross_entropy_options* options,             \
       double* loss, double* grad, int64_t ld_grad),                                                \
      (rows, cols, first_col, vocab, logits, ld_logits, target, ld_target, weight, stats, options, \
       loss, grad, ld_grad))

/* The accepted variant: one pointer per function it answers, typed from the header. */
typedef struct variant_functions {
#define NSM_DECLARE_POINTER(name, params, args) __typeof__(&name) name;
    NSM_FORWARDED_OPERATIONS(NSM_DECLARE_POINTER)
#undef NSM_DECLARE_POINTER
    __typeof__(&nsm_last_error) nsm_last_error;
    __typeof__(&nsm_isa) nsm_isa;
    __typeof__(&nsm_get_num_threads) nsm_get_num_threads;
} variant_functions;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static atomic_int g_started;     /* 1 once g_once has run: a variant chosen, or none (fork handler). */
static int g_loaded;              /* 1 when g_variant is usable; written once, inside g_once. */
static variant_functions g_variant;
static char g_isa[16] = "none";   /* The variant's nsm_isa(), copied once it is loaded. */
static char g_why_none[4096];     /* Why no variant is loaded; written once, inside g_once. */

/* This dispatcher's own file, found by the constructor when the library is loaded. */
static char g_directory[PATH_MAX];      /* Absolute, with a trailing '/'; "" when unknown. */
static char g_directory_problem[512];   /* Why g_directory is unknown. */
static dev_t g_own_device;              /* The real file's identity, to refuse it as a variant. */
static ino_t g_own_inode;
static int g_own_identity_known;

/* Set on a thread once one of its calls failed for want of a variant; nsm_last_error() then
 * gives g_why_none, which no longer changes. One byte of thread-local storage per thread. */
static _Thread_local unsigned char t_failed_without_variant;

/* The export that marks a variant, followed by its NSM_VERSION_NUMBER (VariantMarker.cs). */
#define NSM_VARIANT_MARKER_PREFIX "nsm_variant_v"

/* ---------------------------------------------------------------------------------------------
 * The candidates, best first, and which of them this CPU can run.
 * ------------------------------------------------------------------------------------------- */
typedef struct candidate {
    const char* isa;  /* The NATIVESOFTMAX_MAX_ISA spelling and the variant's nsm_isa(). */
    const char* file; /* Library file name, next to this dispatcher. */
} candidate;

#if defined(__x86_64__)
#define NSM_ARCHITECTURE "x86-64"
#define NSM_ELF_MACHINE EM_X86_64
static const candidate k_candidates[] = {
    {"avx512", "libnativesoftmax_avx512.so"},
    {"avx2", "libnativesoftmax_avx2.so"},
    {"sse4.2", "libnativesoftmax_sse42.so"},
};

#if !defined(__clang__)
/* GCC 12's microarchitecture levels also check that the OS saves the AVX / AVX-512 registers
 * (XGETBV), not only the CPUID bits. */
static int cpu_can_run(const candidate* c)
{
    __builtin_cpu_init();
    if (strcmp(c->isa, "avx512") == 0) return __builtin_cpu_supports("x86-64-v4");
    if (strcmp(c->isa, "avx2") == 0) return __builtin_cpu_supports("x86-64-v3");
    if (strcmp(c->isa, "sse4.2") == 0) return __builtin_cpu_supports("x86-64-v2");
    return 0;
}
#else
/* Clang before 16 does not know the level names, so with clang the levels are checked here as the
 * x86-64 psABI defines them: every CPUID feature bit of the level and, from x86-64-v3 on, that the
 * OS saves the registers the level uses (OSXSAVE, then XCR0 read by XGETBV). The GCC branch above
 * and this one must agree: CTest builds the dispatcher with clang and runs it on this CPU and on
 * emulated older ones (dispatcher_clang). */

/* One CPUID bit: leaf, sub-leaf, register (0 EAX … 3 EDX) and bit number. */
typedef struct cpuid_bit {
    unsigned leaf, subleaf, reg, bit;
} cpuid_bit;

enum { NSM_EAX, NSM_EBX, NSM_ECX, NSM_EDX };

static const cpuid_bit k_level2[] = {
    {1, 0, NSM_ECX, 0},           /* SSE3 */
    {1, 0, NSM_ECX, 9},           /* SSSE3 */
    {1, 0, NSM_ECX, 13},          /* CMPXCHG16B */
    {1, 0, NSM_ECX, 19},          /* SSE4.1 */
    {1, 0, NSM_ECX, 20},          /* SSE4.2 */
    {1, 0, NSM_ECX, 23},          /* POPCNT */
    {0x80000001u, 0, NSM_ECX, 0}, /* LAHF/SAHF */
};
static const cpuid_bit k_level3[] = {
    {1, 0, NSM_ECX, 12},          /* FMA */
    {1, 0, NSM_ECX, 22},          /* MOVBE */
    {1, 0, NSM_ECX, 27},          /* OSXSAVE: XGETBV may be used */
    {1, 0, NSM_ECX, 28},          /* AVX */
    {1, 0, NSM_ECX, 29},          /* F16C */
    {7, 0, NSM_EBX, 3},           /* BMI1 */
    {7, 0, NSM_EBX, 5},           /* AVX2 */
    {7, 0, NSM_EBX, 8},           /* BMI2 */
    {0x80000001u, 0, NSM_ECX, 5}, /* LZCNT */
};
static const cpuid_bit k_level4[] = {
    {7, 0, NSM_EBX, 16},          /* AVX512F */
    {7, 0, NSM_EBX, 17},          /* AVX512DQ */
    {7, 0, NSM_EBX, 28},          /* AVX512CD */
    {7, 0, NSM_EBX, 30},          /* AVX512BW */
    {7, 0, NSM_EBX, 31},          /* AVX512VL */
};

static int has_bits(const cpuid_bit* bits, size_t count)
{
    for (size_t i = 0; i < count; ++i) {
        unsigned r[4];
        /* 0 when the leaf is beyond the CPU's highest: the feature is absent. */
        if (!__get_cpuid_count(bits[i].leaf, bits[i].subleaf, &r[NSM_EAX], &r[NSM_EBX], &r[NSM_ECX],
                               &r[NSM_EDX]))
            return 0;
        if ((r[bits[i].reg] >> bits[i].bit & 1u) == 0) return 0;
    }
    return 1;
}

/* XCR0 & mask == mask: the OS saves the register state the mask names. Only after OSXSAVE. */
static int os_saves(unsigned mask)
{
    unsigned low, high;
    __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
    (void)high;
    return (low & mask) == mask;
}

#define NSM_XCR0_AVX 0x06u    /* SSE and AVX (YMM upper halves) state */
#define NSM_XCR0_AVX512 0xE6u /* and the opmask, ZMM upper halves and ZMM16-31 state */
#define NSM_COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int cpu_can_run(const candidate* c)
{
    int v2 = has_bits(k_level2, NSM_COUNT(k_level2));
    int v3 = v2 && has_bits(k_level3, NSM_COUNT(k_level3)) && os_saves(NSM_XCR0_AVX);
    int v4 = v3 && has_bits(k_level4, NSM_COUNT(k_level4)) && os_saves(NSM_XCR0_AVX512);
    if (strcmp(c->isa, "avx512") == 0) return v4;
    if (strcmp(c->isa, "avx2") == 0) return v3;
    if (strcmp(c->isa, "sse4.2") == 0) return v2;
    return 0;
}
#endif
#elif defined(__aarch64__)
#define NSM_ARCHITECTURE "aarch64"
#define NSM_ELF_MACHINE EM_AARCH64
static const candidate k_candidates[] = {
    {"neon", "libnativesoftmax_neon.so"},
};

static int cpu_can_run(const candidate* c)
{
    /* Advanced SIMD is part of every Linux AArch64 CPU, but ask rather than assume. */
    return strcmp(c->isa, "neon") == 0 && (getauxval(AT_HWCAP) & HWCAP_ASIMD) != 0;
}
#else
#error "NativeSoftmax has variants for x86-64 and aarch64 only"
#endif

#define NSM_CANDIDATE_COUNT ((int)(sizeof k_candidates / sizeof k_candidates[0]))

/* ---------------------------------------------------------------------------------------------
 * Messages
 * ------------------------------------------------------------------------------------------- */
static void append(char* buffer, size_t size, const char* format, ...)
    __attribute__((format(printf, 3, 4)));

static void append(char* buffer, size_t size, const char* format, ...)
{
    size_t used = strlen(buffer);
    if (used + 1 >= size) return;
    va_list args;
    va_start(args, format);
    vsnprintf(buffer + used, size - used, format, args);
    va_end(args);
}

/* Appends " isa: file REASON;" to g_why_none: why candidate c was not loaded. */
static void refuse(const candidate* c, const char* format, ...) __attribute__((format(printf, 2, 3)));

static void refuse(const candidate* c, const char* format, ...)
{
    append(g_why_none, sizeof g_why_none, " %s: %s ", c->isa, c->file);
    size_t used = strlen(g_why_none);
    if (used + 1 < sizeof g_why_none) {
        va_list args;
        va_start(args, format);
        vsnprintf(g_why_none + used, sizeof g_why_none - used, format, args);
        va_end(args);
    }
    append(g_why_none, sizeof g_why_none, ";");
}

/* ---------------------------------------------------------------------------------------------
 * Where this dispatcher is: found once, when the library is loaded. At that moment a relative
 * path (dlopen("lib/libnativesoftmax.so"), LD_LIBRARY_PATH=lib) still means what the loader
 * meant; after the program changes directory it would name another file, or none.
 * ------------------------------------------------------------------------------------------- */
__attribute__((constructor)) static void find_own_file(void)
{
    Dl_info info;
    if (dladdr((void*)&find_own_file, &info) == 0 || info.dli_fname == NULL || info.dli_fname[0] == '\0') {
        snprintf(g_directory_problem, sizeof g_directory_problem,
                 "the dynamic loader does not say which file the dispatcher was loaded from");
        return;
    }
    /* Symbolic links are resolved: a program linked against a link to the library (an install
     * layout's lib/libnativesoftmax.so) finds the variants beside the real file. */
    char* resolved = realpath(info.dli_fname, NULL);
    if (resolved == NULL) {
        snprintf(g_directory_problem, sizeof g_directory_problem,
                 "the dispatcher's path '%.256s' cannot be resolved: %s", info.dli_fname, strerror(errno));
        return;
    }
    struct stat own;
    if (stat(resolved, &own) == 0) {
        g_own_device = own.st_dev;
        g_own_inode = own.st_ino;
        g_own_identity_known = 1;
    }
    size_t length = (size_t)(strrchr(resolved, '/') - resolved) + 1; /* realpath is absolute */
    if (length < sizeof g_directory) {
        memcpy(g_directory, resolved, length);
        g_directory[length] = '\0';
    } else {
        snprintf(g_directory_problem, sizeof g_directory_problem, "the dispatcher's directory is too long");
    }
    free(resolved);
}

/* ---------------------------------------------------------------------------------------------
 * Examining a candidate file before dlopen()
 * ------------------------------------------------------------------------------------------- */
static int read_at(int fd, void* buffer, size_t size, uint64_t offset)
{
    unsigned char* bytes = buffer;
    while (size > 0) {
        ssize_t got = pread(fd, bytes, size, (off_t)offset);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return 0;
        bytes += got;
        size -= (size_t)got;
        offset += (uint64_t)got;
    }
    return 1;
}

/* Whether [offset, offset + size) lies within a file of file_size bytes, without overflow. */
static int within(uint64_t offset, uint64_t size, uint64_t file_size)
{
    return offset <= file_size && size <= file_size - offset;
}

static const char* machine_name(unsigned machine)
{
    switch (machine) {
    case EM_X86_64: return "x86-64";
    case EM_AARCH64: return "aarch64";
    case EM_386: return "i386";
    case EM_ARM: return "32-bit arm";
    case EM_RISCV: return "risc-v";
    case EM_PPC64: return "ppc64";
    case EM_S390: return "s390x";
    default: return "another machine";
    }
}

/* Finds NSM_VARIANT_MARKER_PREFIX<digits> in the file's dynamic string table (the names of its
 * dynamic symbols). Returns 1 and sets *version to ours when our marker is there, else to the
 * first other version seen; 0 when no marker is there; -1 (with c refused) when the table cannot
 * be read. A name may share its tail with a longer one, so the whole table is searched. */
static int find_marker(const candidate* c, int fd, uint64_t file_size, const Elf64_Phdr* headers,
                       int count, long* version)
{
    const Elf64_Phdr* dynamic_header = NULL;
    for (int i = 0; i < count; ++i)
        if (headers[i].p_type == PT_DYNAMIC) dynamic_header = &headers[i];
    if (dynamic_header == NULL || !within(dynamic_header->p_offset, dynamic_header->p_filesz, file_size)) {
        refuse(c, "has no readable dynamic section (PT_DYNAMIC), so it is not a shared library");
        return -1;
    }

    int found = -1;
    size_t entries = dynamic_header->p_filesz / sizeof(Elf64_Dyn);
    Elf64_Dyn* dynamic = malloc(entries * sizeof(Elf64_Dyn) + 1);
    char* strings = NULL;
    uint64_t table_address = 0, table_size = 0;
    int have_address = 0, have_size = 0;
    if (dynamic == NULL || !read_at(fd, dynamic, entries * sizeof(Elf64_Dyn), dynamic_header->p_offset)) {
        refuse(c, "has a dynamic section that cannot be read");
        goto done;
    }
    for (size_t i = 0; i < entries && dynamic[i].d_tag != DT_NULL; ++i) {
        if (dynamic[i].d_tag == DT_STRTAB) table_address = dynamic[i].d_un.d_ptr, have_address = 1;
        if (dynamic[i].d_tag == DT_STRSZ) table_size = dynamic[i].d_un.d_val, have_size = 1;
    }
    /* The table's file offset: through the loadable segment that holds its address. */
    uint64_t table_offset = 0;
    int mapped = 0;
    for (int i = 0; i < count && have_address && have_size; ++i) {
        const Elf64_Phdr* h = &headers[i];
        if (h->p_type == PT_LOAD && table_address >= h->p_vaddr &&
            within(table_address - h->p_vaddr, table_size, h->p_filesz)) {
            table_offset = h->p_offset + (table_address - h->p_vaddr);
            mapped = 1;
            break;
        }
    }
    if (!mapped || !within(table_offset, table_size, file_size) || (strings = malloc(table_size + 1)) == NULL ||
        !read_at(fd, strings, table_size, table_offset)) {
        refuse(c, "has no readable dynamic string table");
        goto done;
    }
    strings[table_size] = '\0';

    found = 0;
    const size_t prefix = sizeof NSM_VARIANT_MARKER_PREFIX - 1;
    for (const char* at = strings; (at = memmem(at, table_size - (size_t)(at - strings),
                                                NSM_VARIANT_MARKER_PREFIX, prefix)) != NULL;
         at += prefix) {
        const char* digits = at + prefix;
        size_t n = strspn(digits, "0123456789");
        if (n == 0 || n > 9 || digits[n] != '\0') continue;
        long seen = strtol(digits, NULL, 10);
        if (!found || seen == NSM_VERSION_NUMBER) *version = seen;
        found = 1;
        if (seen == NSM_VERSION_NUMBER) break;
    }
done:
    free(strings);
    free(dynamic);
    return found;
}

/* Reads the file at path and decides, without loading it, whether it may be dlopen()ed as
 * candidate c (the checks are listed at the top of this file). Returns 1 if so; otherwise refuses
 * c with the reason and returns 0. */
static int inspect_file(const candidate* c, const char* path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block us */
    if (fd < 0) {
        refuse(c, "cannot be opened: %s", strerror(errno));
        return 0;
    }
    int ok = 0;
    Elf64_Phdr* headers = NULL;
    struct stat st;
    Elf64_Ehdr header;
    if (fstat(fd, &st) != 0) {
        refuse(c, "cannot be examined: %s", strerror(errno));
        goto done;
    }
    if (g_own_identity_known && st.st_dev == g_own_device && st.st_ino == g_own_inode) {
        refuse(c, "is this dispatcher itself (a link to it), not a variant");
        goto done;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (!S_ISREG(st.st_mode) || size < EI_NIDENT || !read_at(fd, header.e_ident, EI_NIDENT, 0) ||
        memcmp(header.e_ident, ELFMAG, SELFMAG) != 0) {
        refuse(c, "is not an ELF shared library");
        goto done;
    }
    if (header.e_ident[EI_DATA] != ELFDATA2LSB) {
        refuse(c, "is a big-endian ELF file; this " NSM_ARCHITECTURE " dispatcher needs a little-endian one");
        goto done;
    }
    if (header.e_ident[EI_CLASS] != ELFCLASS64) {
        /* e_machine has the same offset in both classes. */
        uint16_t machine = 0;
        int known = size >= 20 && read_at(fd, &machine, sizeof machine, 18);
        refuse(c, "is a %s ELF file%s%s%s; this " NSM_ARCHITECTURE " dispatcher needs a 64-bit one",
               header.e_ident[EI_CLASS] == ELFCLASS32 ? "32-bit" : "damaged (unknown class)",
               known ? " (for " : "", known ? machine_name(machine) : "", known ? ")" : "");
        goto done;
    }
    if (size < sizeof header || !read_at(fd, &header, sizeof header, 0)) {
        refuse(c, "is truncated: %llu bytes, shorter than an ELF header", (unsigned long long)size);
        goto done;
    }
    if (header.e_machine != NSM_ELF_MACHINE) {
        refuse(c, "is built for %s (ELF machine %u), not for " NSM_ARCHITECTURE,
               machine_name(header.e_machine), (unsigned)header.e_machine);
        goto done;
    }
    if (header.e_type != ET_DYN) {
        refuse(c, "is an ELF file but not a shared library (type %u)", (unsigned)header.e_type);
        goto done;
    }
    if (header.e_phentsize != sizeof(Elf64_Phdr) || header.e_phnum == 0 || header.e_phnum == PN_XNUM) {
        refuse(c, "has a damaged program header table");
        goto done;
    }
    size_t table_bytes = (size_t)header.e_phnum * sizeof(Elf64_Phdr);
    if (!within(header.e_phoff, table_bytes, size)) {
        refuse(c, "is truncated: %llu bytes, but its program headers end at byte %llu",
               (unsigned long long)size, (unsigned long long)header.e_phoff + table_bytes);
        goto done;
    }
    headers = malloc(table_bytes);
    if (headers == NULL || !read_at(fd, headers, table_bytes, header.e_phoff)) {
        refuse(c, "has program headers that cannot be read");
        goto done;
    }
    int loads = 0;
    for (int i = 0; i < header.e_phnum; ++i) {
        const Elf64_Phdr* h = &headers[i];
        if (h->p_type != PT_LOAD) continue;
        ++loads;
        if (!within(h->p_offset, h->p_filesz, size)) {
            refuse(c, "is truncated: %llu bytes, but its loadable segment %d covers bytes %llu to %llu",
                   (unsigned long long)size, loads, (unsigned long long)h->p_offset,
                   (unsigned long long)h->p_offset + (unsigned long long)h->p_filesz);
            goto done;
        }
    }
    if (loads == 0) {
        refuse(c, "has no loadable segment");
        goto done;
    }

    long version = 0;
    switch (find_marker(c, fd, size, headers, header.e_phnum, &version)) {
    case 1:
        if (version == NSM_VERSION_NUMBER) {
            ok = 1;
        } else {
            refuse(c, "is a variant of version %ld (it exports " NSM_VARIANT_MARKER_PREFIX "%ld), "
                      "but this dispatcher is version %d; install the variants of the same release",
                   version, version, NSM_VERSION_NUMBER);
        }
        break;
    case 0:
        refuse(c, "is not a NativeSoftmax variant: it exports no " NSM_VARIANT_MARKER_PREFIX
                  "<version> marker (a copy of the dispatcher, or a build from before the marker?)");
        break;
    default: break; /* find_marker refused it */
    }
done:
    free(headers);
    close(fd);
    return ok;
}

/* ---------------------------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------------------------- */

/* Examines, dlopen()s and accepts one variant. On failure returns 0 and appends the reason to
 * g_why_none. A file once dlopen()ed is never dlclose()d, whether it is accepted or not. */
static int load_variant(const candidate* c)
{
    size_t length = strlen(g_directory) + strlen(c->file) + 1;
    char* path = malloc(length);
    if (path == NULL) {
        refuse(c, "cannot be examined: out of memory");
        return 0;
    }
    snprintf(path, length, "%s%s", g_directory, c->file);
    int loaded = 0;
    if (!inspect_file(c, path)) goto done;

    void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        const char* reason = dlerror();
        append(g_why_none, sizeof g_why_none, " %s: %s;", c->isa, reason ? reason : "dlopen failed");
        goto done;
    }

    char marker[32];
    snprintf(marker, sizeof marker, NSM_VARIANT_MARKER_PREFIX "%d", NSM_VERSION_NUMBER);
    if (dlsym(handle, marker) == NULL) {
        refuse(c, "names %s but does not define it", marker);
        goto done;
    }
    variant_functions found;
    memset(&found, 0, sizeof found);
    const char* missing = NULL;
#define NSM_LOOK_UP(name, params, args)                                                            \
    found.name = (__typeof__(&name))dlsym(handle, #name);                                          \
    if (found.name == NULL && missing == NULL) missing = #name;
    NSM_FORWARDED_OPERATIONS(NSM_LOOK_UP)
    NSM_LOOK_UP(nsm_last_error, , )
    NSM_LOOK_UP(nsm_isa, , )
    NSM_LOOK_UP(nsm_get_num_threads, , )
#undef NSM_LOOK_UP
    if (missing != NULL) {
        refuse(c, "does not export %s", missing);
        goto done;
    }

    /* Accepted: the first call into the variant (which starts its runtime). */
    const char* isa = found.nsm_isa();
    snprintf(g_isa, sizeof g_isa, "%s", isa ? isa : "?");
    g_variant = found;
    g_loaded = 1;
    loaded = 1;
done:
    free(path);
    return loaded;
}

/* Index of the first candidate allowed by NATIVESOFTMAX_MAX_ISA, or -1 (and g_why_none set) when
 * the value is not a path of this architecture. Unset or empty means no cap. */
static int first_allowed_candidate(void)
{
    const char* cap = getenv("NATIVESOFTMAX_MAX_ISA");
    if (cap == NULL || cap[0] == '\0') return 0;
    for (int i = 0; i < NSM_CANDIDATE_COUNT; ++i)
        if (strcasecmp(cap, k_candidates[i].isa) == 0) return i;

    snprintf(g_why_none, sizeof g_why_none,
             "NATIVESOFTMAX_MAX_ISA=\"%.64s\" is not an instruction-set path of this " NSM_ARCHITECTURE
             " build; expected one of:",
             cap);
    for (int i = 0; i < NSM_CANDIDATE_COUNT; ++i)
        append(g_why_none, sizeof g_why_none, " \"%s\"", k_candidates[i].isa);
    append(g_why_none, sizeof g_why_none, " (or unset for the best this CPU supports)");
    return -1;
}

static void load_best_variant(void)
{
    int first = first_allowed_candidate();
    if (first < 0) return;
    if (g_directory[0] == '\0') {
        snprintf(g_why_none, sizeof g_why_none,
                 "no NativeSoftmax build can be loaded: %s", g_directory_problem);
        return;
    }

    snprintf(g_why_none, sizeof g_why_none,
             "no NativeSoftmax build could be loaded from '%.1024s' for this CPU:", g_directory);
    for (int i = first; i < NSM_CANDIDATE_COUNT; ++i) {
        if (!cpu_can_run(&k_candidates[i])) {
            append(g_why_none, sizeof g_why_none, " %s: not supported by this CPU;",
                   k_candidates[i].isa);
            continue;
        }
        if (load_variant(&k_candidates[i])) return;
    }
}

/* The NativeAOT runtime, which the variant's first function call starts, sets SIGPIPE to be
 * ignored (so that its own sockets get EPIPE instead): a process-wide choice that is the host's
 * to make, and that the programs it starts would inherit. The library writes to no pipe or
 * socket, so the disposition is put back as the host had it. (The runtime's handlers of SIGSEGV,
 * SIGFPE and the real-time signal that stops threads for garbage collection stay: it needs them.) */
static void choose_variant(void)
{
    struct sigaction host_sigpipe;
    int saved = sigaction(SIGPIPE, NULL, &host_sigpipe) == 0;
    load_best_variant();
    if (saved) sigaction(SIGPIPE, &host_sigpipe, NULL);
    atomic_store(&g_started, 1);
}

/* ---------------------------------------------------------------------------------------------
 * fork() while another thread is inside a call
 *
 * A child gets only the thread that forked. If another thread was running the variant's code at
 * that moment (its first call starting the runtime included), the child's runtime still counts
 * it as running managed code: its first garbage collection waits for a thread that does not exist
 * there, and the child aborts or hangs (found by fork tests: 6 of 10 children aborted). So every
 * thread that calls counts, in a slot of its own, how deep it is inside the variant's code, and a
 * pthread_atfork handler makes fork() wait until no other slot counts a call. Entries that come
 * meanwhile wait: without limit while this handler runs (it needs nothing of theirs), then for
 * FORK_WAIT_MS at most while the host's own handlers run, which may need a lock the entering
 * thread holds. A slot per thread, on its own cache line, rather than one shared count: two
 * threads making small calls at once slowed by up to 1.9x on a shared counter. And where Linux
 * has membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), the fence that orders an entry's count before
 * its read of the fork state is moved to the fork side (the asymmetric Dekker of userspace RCU):
 * the handler makes every running thread of the process execute a full barrier, so an entry
 * costs plain stores and a load. The library's own threads (its workers, the runtime's) have no
 * slot: the handler then waits for them to be asleep (wait_for_library_threads).
 *
 * Signal handlers: a fork, or a call, made by a signal handler on a thread that is inside a call
 * or inside this fork handler is let through unguarded rather than made to wait for itself. The
 * slots are never freed (an ended thread's is reused), so the handler walks them without a lock;
 * the one mutex a signal handler could otherwise find its own thread holding, g_resume_mutex, is
 * held with signals blocked. Three reviews shaped these rules (docs/design.md §5b).
 * ------------------------------------------------------------------------------------------- */
typedef struct entry_slot {
    atomic_int depth;              /* Calls of the owner inside the variant's code (a signal
                                      handler may call during a call). */
    atomic_int taken;              /* 1 while a live thread owns the slot. */
    int admitted;                  /* Owner only: a level of its calls has passed the fork check. */
    struct entry_slot* next;       /* Set once, before the slot is linked in. */
} entry_slot;

enum { CACHE_LINE = 64, FORK_WAIT_MS = 50, FIRST_CALL_WAIT_MS = 1000, LIBRARY_THREADS_WAIT_MS = 1000 };
enum { NOT_FORKING, FORK_PREPARING, FORK_HOST_HANDLERS }; /* values of g_forking */

static entry_slot* _Atomic g_slots; /* Every slot ever made, newest first; never unlinked. */
static pthread_key_t g_slot_key;   /* Its destructor gives an ended thread's slot back. */
static int g_slot_key_made;
static _Thread_local entry_slot* t_slot;
static _Thread_local int t_in_fork_handler;  /* 1 from this thread's prepare handler to its parent/child one. */
static _Thread_local int t_fork_unguarded;   /* This thread's forks in progress that went unguarded. */
static atomic_int g_forking;       /* NOT_FORKING, or how far fork()'s handlers have come. */
static int g_fork_side_fence;      /* 1 when membarrier() gives the fork handler the fence. */
static pthread_mutex_t g_fork_mutex = PTHREAD_MUTEX_INITIALIZER; /* One fork at a time; held across it. */
static pthread_mutex_t g_resume_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_resumed;   /* On CLOCK_MONOTONIC; made by the constructor, and in a child. */

static void make_resumed_condition(void)
{
    pthread_condattr_t attributes;
    pthread_condattr_init(&attributes);
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    pthread_cond_init(&g_resumed, &attributes);
    pthread_condattr_destroy(&attributes);
}

/* Blocks every signal of the calling thread, keeping the old mask in *old, for the sections that
 * hold g_resume_mutex: a signal handler on the thread could otherwise call in and wait on it. */
static void block_signals(sigset_t* old)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, old);
}

/* Sets the fork state and wakes the entries waiting for it; with signals blocked, so that a
 * signal handler on this thread that calls the library cannot find g_resume_mutex held. */
static void set_fork_state(int state)
{
    sigset_t old;
    block_signals(&old);
    pthread_mutex_lock(&g_resume_mutex);
    atomic_store(&g_forking, state);
    pthread_cond_broadcast(&g_resumed);
    pthread_mutex_unlock(&g_resume_mutex);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* A slot free for the next new thread: its own ended, or (in a child) did not come along. */
static void free_slot(entry_slot* slot)
{
    atomic_store(&slot->depth, 0);
    slot->admitted = 0;
    atomic_store(&slot->taken, 0);
}

/* The key's destructor, on the ending thread. A call from a later destructor takes a slot again. */
static void give_back_slot(void* ended)
{
    t_slot = NULL;
    free_slot(ended);
}

/* The calling thread's slot: a free one, else a new one linked in (lock-free); NULL when there is
 * no memory for one (the thread then enters uncounted, as before this guard). */
static entry_slot* own_slot(void)
{
    if (t_slot != NULL) return t_slot;
    entry_slot* slot = NULL;
    for (entry_slot* free_slot = atomic_load(&g_slots); free_slot != NULL && slot == NULL; free_slot = free_slot->next) {
        int expected = 0;
        if (atomic_load(&free_slot->taken) == 0 && atomic_compare_exchange_strong(&free_slot->taken, &expected, 1))
            slot = free_slot;
    }
    if (slot == NULL) {
        slot = aligned_alloc(CACHE_LINE, CACHE_LINE);
        if (slot == NULL) return NULL;
        atomic_init(&slot->depth, 0);
        atomic_init(&slot->taken, 1);
        slot->admitted = 0;
        slot->next = atomic_load(&g_slots);
        while (!atomic_compare_exchange_weak(&g_slots, &slot->next, slot)) {
        }
    }
    if (g_slot_key_made) pthread_setspecific(g_slot_key, slot);
    t_slot = slot;
    return slot;
}

/* Waits for the fork under way to end: for as long as the library's handler runs, then for
 * FORK_WAIT_MS at most, since the calling thread may hold a lock of the host's that one of the
 * host's own fork handlers (which run after the library's) takes. 1 when the fork ended, 0 when
 * the wait gave up. */
static int wait_for_fork(void)
{
    struct timespec deadline = {0, 0};
    int gave_up = 0;
    sigset_t old;
    block_signals(&old);
    pthread_mutex_lock(&g_resume_mutex);
    for (int state; !gave_up && (state = atomic_load(&g_forking)) != NOT_FORKING;) {
        if (state == FORK_PREPARING) {
            deadline.tv_sec = deadline.tv_nsec = 0; /* a new fork's host handlers get their own 50 ms */
            pthread_cond_wait(&g_resumed, &g_resume_mutex);
            continue;
        }
        if (deadline.tv_sec == 0 && deadline.tv_nsec == 0) {
            clock_gettime(CLOCK_MONOTONIC, &deadline);
            deadline.tv_nsec += FORK_WAIT_MS * 1000000L;
            deadline.tv_sec += deadline.tv_nsec / 1000000000L;
            deadline.tv_nsec %= 1000000000L;
        }
        gave_up = pthread_cond_timedwait(&g_resumed, &g_resume_mutex, &deadline) == ETIMEDOUT;
    }
    pthread_mutex_unlock(&g_resume_mutex);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return !gave_up;
}

/* Counts the entry, then reads the fork state; the prepare handler sets the state, then reads the
 * counts. A full fence between each pair (here, or membarrier() on the fork side): either the
 * entry sees the fork, or the fork sees the entry. Only the slot's own thread writes its count. */
static inline __attribute__((always_inline)) void count_in(entry_slot* slot, int depth)
{
    if (g_fork_side_fence) {
        atomic_store_explicit(&slot->depth, depth, memory_order_relaxed);
        atomic_signal_fence(memory_order_seq_cst); /* the compiler keeps the order; membarrier the CPU */
    } else {
        atomic_store(&slot->depth, depth);
    }
}

/* A fork is under way and this entry must wait for it: the outermost call of its thread, or a
 * call from a signal handler while no level of its thread's calls has passed its check (a fork
 * may already have passed the slot). Not on the thread that is forking (a signal handler inside
 * its fork handler). */
static int entry_waits(const entry_slot* slot, int outer)
{
    return (outer == 0 || !slot->admitted) && !t_in_fork_handler &&
           atomic_load_explicit(&g_forking, g_fork_side_fence ? memory_order_relaxed : memory_order_seq_cst);
}

static inline __attribute__((always_inline)) entry_slot* enter(void)
{
    entry_slot* slot = own_slot();
    if (slot == NULL) return NULL;
    int outer = atomic_load_explicit(&slot->depth, memory_order_relaxed);
    count_in(slot, outer + 1);
    if (__builtin_expect(atomic_load_explicit(&g_forking, g_fork_side_fence ? memory_order_relaxed : memory_order_seq_cst) !=
                         NOT_FORKING, 0)) {
        while (entry_waits(slot, outer)) {
            atomic_store(&slot->depth, 0); /* the outer call, if any, has not passed its check yet */
            int ended = wait_for_fork();
            count_in(slot, outer + 1);
            if (!ended) break; /* in all the same: the host's handlers may be waiting for this thread */
        }
    }
    slot->admitted = 1; /* this level passed its check: a call inside it need not wait */
    return slot;
}

static inline __attribute__((always_inline)) void leave(entry_slot* slot)
{
    if (slot == NULL) return;
    int depth = atomic_load_explicit(&slot->depth, memory_order_relaxed) - 1;
    if (depth == 0) slot->admitted = 0;
    atomic_store_explicit(&slot->depth, depth, memory_order_release);
}

/* Whether the thread named by the /proc/self/task entry `task` is one of the library's own (a
 * worker, "nativesoftmax-N", or one of the runtime's, ".NET Finalizer" and the like) and running
 * (state R in its stat file, where a thread running managed code always is); 0 when that cannot
 * be read. */
static int library_thread_awake(const char* task)
{
    char path[64], text[512];
    snprintf(path, sizeof path, "/proc/self/task/%.20s/comm", task);
    FILE* file = fopen(path, "r");
    if (file == NULL) return 0;
    int read = fgets(text, sizeof text, file) != NULL;
    fclose(file);
    if (!read || (strncmp(text, "nativesoftmax-", 14) != 0 && strncmp(text, ".NET ", 5) != 0)) return 0;
    snprintf(path, sizeof path, "/proc/self/task/%.20s/stat", task);
    file = fopen(path, "r");
    if (file == NULL) return 0;
    read = fgets(text, sizeof text, file) != NULL;
    fclose(file);
    const char* end_of_name = read ? strrchr(text, ')') : NULL;
    if (end_of_name == NULL || end_of_name[1] == '\0') return 0;
    return end_of_name[2] == 'R';
}

static long milliseconds_since(const struct timespec* start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000L + (now.tv_nsec - start->tv_nsec) / 1000000L;
}

static void pause_briefly(void)
{
    struct timespec pause = {0, 20 * 1000};
    nanosleep(&pause, NULL);
}

/* The library's own threads also run managed code outside any entry: a worker winds down for some
 * microseconds after its call has returned (forking then, 2 to 9 children in 40 aborted), the
 * runtime's finalizer thread runs finalizers after a collection. None of them runs managed code
 * while asleep in the kernel, so fork waits, up to a second, until each one that runs sleeps. */
static void wait_for_library_threads(void)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    char self[24];
    snprintf(self, sizeof self, "%ld", (long)syscall(SYS_gettid));
    for (;;) {
        DIR* tasks = opendir("/proc/self/task");
        if (tasks == NULL) return;
        int awake = 0;
        for (struct dirent* task; !awake && (task = readdir(tasks)) != NULL;)
            awake = task->d_name[0] != '.' && strcmp(task->d_name, self) != 0 && library_thread_awake(task->d_name);
        closedir(tasks);
        if (!awake || milliseconds_since(&start) >= LIBRARY_THREADS_WAIT_MS) return;
        pause_briefly();
    }
}

static void before_fork(void)
{
    /* A signal handler forking on a thread that is inside a call, or inside this very handler:
     * unguarded (waiting would wait for itself). */
    entry_slot* own = t_slot;
    if (t_in_fork_handler || (own != NULL && atomic_load(&own->depth) != 0)) {
        ++t_fork_unguarded; /* a count: such a fork's handler may be interrupted by another */
        return;
    }
    t_in_fork_handler = 1;
    pthread_mutex_lock(&g_fork_mutex);
    set_fork_state(FORK_PREPARING);
#ifdef NSM_HAVE_MEMBARRIER
    if (g_fork_side_fence) syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0);
#endif
    /* Every other slot's calls. While the process's first call runs, for a second at most: it may
     * need the dynamic loader's lock, which the forking thread may hold (a constructor that forks).
     * The slots are never freed, so the list is walked without a lock. */
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (entry_slot* slot = atomic_load(&g_slots); slot != NULL; slot = slot->next) {
        while (slot != own && atomic_load(&slot->depth) != 0 &&
               (atomic_load(&g_started) || milliseconds_since(&start) < FIRST_CALL_WAIT_MS))
            pause_briefly();
    }
    if (atomic_load(&g_started)) wait_for_library_threads();
    set_fork_state(FORK_HOST_HANDLERS); /* the host's own handlers run next: entries may give up */
}

static void after_fork_in_parent(void)
{
    if (t_fork_unguarded > 0) {
        --t_fork_unguarded;
        return;
    }
    set_fork_state(NOT_FORKING);
    pthread_mutex_unlock(&g_fork_mutex);
    t_in_fork_handler = 0;
}

static void after_fork_in_child(void)
{
    int unguarded = t_fork_unguarded > 0;
    if (unguarded) --t_fork_unguarded;
    /* The other threads do not exist here: a fresh mutex and condition variable, not ones they may
     * have held or waited on, and their slots free (one may have counted an entry after the
     * prepare handler read it, about to see the fork and wait, or done waiting). An unguarded fork
     * (from a signal handler) gets the same: another thread's fork may have been under way. */
    static const pthread_mutex_t fresh_mutex = PTHREAD_MUTEX_INITIALIZER;
    memcpy(&g_resume_mutex, &fresh_mutex, sizeof fresh_mutex);
    make_resumed_condition();
    for (entry_slot* slot = atomic_load(&g_slots); slot != NULL; slot = slot->next) {
        if (slot != t_slot) free_slot(slot);
    }
#ifdef NSM_HAVE_MEMBARRIER
    /* The registration belongs to the parent's address space: the child registers its own, or
     * (alone here, so safely) goes back to the fence on the entry side. */
    if (g_fork_side_fence)
        g_fork_side_fence = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0) == 0;
#endif
    /* The fork's state and mutex: this thread's own fork's, or another thread's, gone here. Kept
     * only when this was a signal handler's fork inside this thread's own fork handler, whose
     * handlers go on in this child too. */
    if (!unguarded || !t_in_fork_handler) {
        atomic_store(&g_forking, NOT_FORKING);
        memcpy(&g_fork_mutex, &fresh_mutex, sizeof fresh_mutex);
        t_in_fork_handler = 0;
    }
}

__attribute__((constructor)) static void register_fork_handlers(void)
{
#ifdef NSM_HAVE_MEMBARRIER
    long commands = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0);
    g_fork_side_fence = commands > 0 && (commands & MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0 &&
                        syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0) == 0;
#endif
    make_resumed_condition();
    g_slot_key_made = pthread_key_create(&g_slot_key, give_back_slot) == 0;
    pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child); /* glibc drops them at dlclose() */
}

/* At dlclose(): the key's destructor would otherwise be called, once this file is unmapped, by
 * every thread that had called and ends later. Their slots are left behind (64 bytes each). */
__attribute__((destructor)) static void delete_slot_key(void)
{
    if (g_slot_key_made) pthread_key_delete(g_slot_key);
}

/* Loads the variant on the first call; returns 1 when one is loaded, else marks the calling
 * thread's failure (nsm_last_error() then gives g_why_none) and returns 0. */
static int ensure_variant(void)
{
    /* g_started is stored after g_loaded: once it reads 1 here, pthread_once has nothing to do. */
    if (!atomic_load_explicit(&g_started, memory_order_acquire)) pthread_once(&g_once, choose_variant);
    if (g_loaded) return 1;
    t_failed_without_variant = 1;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Exports answered here
 * ------------------------------------------------------------------------------------------- */
NSM_API const char* nsm_status_string(nsm_status status)
{
    switch (status) {
    case NSM_OK: return "success";
    case NSM_ERR_NULL_POINTER: return "a required pointer is NULL";
    case NSM_ERR_INVALID_SHAPE: return "invalid shape (rows < 0, cols < 1, or too large to address)";
    case NSM_ERR_INVALID_LEADING_DIM: return "a leading dimension is smaller than cols";
    case NSM_ERR_LABEL_OUT_OF_RANGE: return "a class index is outside [0, cols) and is not ignore_index";
    case NSM_ERR_INVALID_ARGUMENT: return "an option is out of its domain";
    case NSM_ERR_OVERLAP: return "an output partially overlaps an input or another output";
    case NSM_ERR_UNSUPPORTED_CPU: return "no build of the library can run on this CPU";
    case NSM_ERR_INTERNAL: return "internal error in the library (a bug: please report)";
    case NSM_ERR_OUT_OF_MEMORY: return "out of memory: the system refused the working memory the call needs";
    default: return "unknown status";
    }
}

NSM_API int32_t nsm_version_number(void)
{
    return NSM_VERSION_NUMBER;
}

NSM_API const char* nsm_version_string(void)
{
    return NSM_VERSION_STRING;
}

NSM_API const char* nsm_isa(void)
{
    entry_slot* slot = enter();
    pthread_once(&g_once, choose_variant);
    leave(slot);
    return g_isa;
}

NSM_API int32_t nsm_get_num_threads(void)
{
    entry_slot* slot = enter();
    pthread_once(&g_once, choose_variant);
    int32_t count = g_loaded ? g_variant.nsm_get_num_threads() : 1;
    leave(slot);
    return count;
}

NSM_API const char* nsm_last_error(void)
{
    entry_slot* slot = enter();
    pthread_once(&g_once, choose_variant);
    const char* message = g_loaded ? g_variant.nsm_last_error() : t_failed_without_variant ? g_why_none : "";
    leave(slot);
    return message;
}

/* ---------------------------------------------------------------------------------------------
 * Exports forwarded to the variant
 * ------------------------------------------------------------------------------------------- */
#define NSM_DEFINE_FORWARDER(name, params, args)                                                   \
    NSM_API nsm_status name params                                                                 \
    {                                                                                              \
        entry_slot* slot = enter();                                                                \
        nsm_status status = ensure_variant() ? g_variant.name args : NSM_ERR_UNSUPPORTED_CPU;      \
        leave(slot);                                                                               \
        return status;                                                                             \
    }
NSM_FORWARDED_OPERATIONS(NSM_DEFINE_FORWARDER)
#undef NSM_DEFINE_FORWARDER
