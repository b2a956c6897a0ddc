/*
 * dispatch.c — libnativesoftmax.so, the one library that C programs and the Python binding link.
 *
 * The computing code lives in per-instruction-set builds of the NativeAOT library that sit next
 * to this file (DESIGN.md §3):
 *
 *     x86-64:   libnativesoftmax_avx512.so  (x86-64-v4)
 *               libnativesoftmax_avx2.so    (x86-64-v3)
 *               libnativesoftmax_sse42.so   (x86-64-v2)
 *     aarch64:  libnativesoftmax_neon.so
 *
 * On the first call (pthread_once) we ask the CPU which levels it supports, cap the choice with
 * NATIVESOFTMAX_MAX_ISA, and dlopen() the best variant that loads, trying the next lower one when
 * a file is missing or broken. A variant is never loaded on a CPU that lacks its instruction set:
 * an x86-64-v4 NativeAOT build aborts the process there.
 *
 * Every function of nativesoftmax.h is defined here and nothing else is exported (the build uses
 * -fvisibility=hidden; NSM_API marks the header's functions "default"). The operations forward to
 * the variant. nsm_status_string and the version functions are answered here, so they work even
 * when no variant can run; a variant whose version differs from ours is refused, so the answer is
 * also the loaded library's. nsm_last_error forwards to the variant, or gives our own per-thread
 * message when no variant is loaded.
 */
#define _GNU_SOURCE /* dladdr */
#include "nativesoftmax.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

/* The operations forwarded to the variant: X(name, (parameters), (arguments)). */
#define NSM_FORWARDED_OPERATIONS(X)                                                                 \
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
      (rows, cols, logits, ld_logits, target, ld_target, weight, options, loss, grad, ld_grad))

/* The loaded variant: its handle and one pointer per function, typed from the header. */
typedef struct variant_functions {
#define NSM_DECLARE_POINTER(name, params, args) __typeof__(&name) name;
    NSM_FORWARDED_OPERATIONS(NSM_DECLARE_POINTER)
#undef NSM_DECLARE_POINTER
    __typeof__(&nsm_last_error) nsm_last_error;
    __typeof__(&nsm_version_number) nsm_version_number;
    __typeof__(&nsm_isa) nsm_isa;
} variant_functions;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_loaded;              /* 1 when g_variant is usable; written once, inside g_once. */
static variant_functions g_variant;
static char g_isa[16] = "none";   /* The variant's nsm_isa(), copied once it is loaded. */
static char g_why_none[4096];     /* Why no variant is loaded (the message of every failed call). */

/* Our own per-thread message, used only while no variant is loaded. */
static _Thread_local char t_last_error[4096];

/* ---------------------------------------------------------------------------------------------
 * The candidates, best first, and which of them this CPU can run.
 * ------------------------------------------------------------------------------------------- */
typedef struct candidate {
    const char* isa;  /* The NATIVESOFTMAX_MAX_ISA spelling and the variant's nsm_isa(). */
    const char* file; /* Library file name, next to this dispatcher. */
} candidate;

#if defined(__x86_64__)
#define NSM_ARCHITECTURE "x86-64"
static const candidate k_candidates[] = {
    {"avx512", "libnativesoftmax_avx512.so"},
    {"avx2", "libnativesoftmax_avx2.so"},
    {"sse4.2", "libnativesoftmax_sse42.so"},
};

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
#elif defined(__aarch64__)
#define NSM_ARCHITECTURE "aarch64"
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

/* The directory of the file this dispatcher was loaded from, with a trailing '/', or "" if
 * unknown. Symbolic links are resolved first: a program linked against a link to the library
 * (an install layout's lib/libnativesoftmax.so) finds the variants beside the real file. */
static void own_directory(char* out, size_t size)
{
    Dl_info info;
    out[0] = '\0';
    if (dladdr((void*)&own_directory, &info) == 0 || info.dli_fname == NULL) return;
    char* resolved = realpath(info.dli_fname, NULL);
    const char* path = resolved != NULL ? resolved : info.dli_fname;
    const char* slash = strrchr(path, '/');
    size_t length = slash != NULL ? (size_t)(slash - path) + 1 : 0;
    if (length > 0 && length < size) {
        memcpy(out, path, length);
        out[length] = '\0';
    }
    free(resolved);
}

/* ---------------------------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------------------------- */

/* dlopen one variant and look up every function. On failure returns 0, appends the reason to
 * g_why_none, and leaves nothing loaded. */
static int load_variant(const char* directory, const candidate* c)
{
    char path[4096];
    int length = snprintf(path, sizeof path, "%s%s", directory, c->file);
    if (length < 0 || (size_t)length >= sizeof path) {
        append(g_why_none, sizeof g_why_none, " %s: the path of %s is too long;", c->isa, c->file);
        return 0;
    }

    void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        const char* reason = dlerror();
        append(g_why_none, sizeof g_why_none, " %s: %s;", c->isa, reason ? reason : "dlopen failed");
        return 0;
    }

    variant_functions found;
    memset(&found, 0, sizeof found);
    const char* missing = NULL;
#define NSM_LOOK_UP(name, params, args)                                                            \
    found.name = (__typeof__(&name))dlsym(handle, #name);                                          \
    if (found.name == NULL && missing == NULL) missing = #name;
    NSM_FORWARDED_OPERATIONS(NSM_LOOK_UP)
    NSM_LOOK_UP(nsm_last_error, , )
    NSM_LOOK_UP(nsm_version_number, , )
    NSM_LOOK_UP(nsm_isa, , )
#undef NSM_LOOK_UP
    if (missing != NULL) {
        append(g_why_none, sizeof g_why_none, " %s: %s does not export %s;", c->isa, path, missing);
        dlclose(handle);
        return 0;
    }

    int32_t version = found.nsm_version_number();
    if (version != NSM_VERSION_NUMBER) {
        append(g_why_none, sizeof g_why_none, " %s: %s is version %d, the dispatcher is %d;", c->isa,
               path, (int)version, NSM_VERSION_NUMBER);
        dlclose(handle);
        return 0;
    }

    const char* isa = found.nsm_isa();
    snprintf(g_isa, sizeof g_isa, "%s", isa ? isa : "?");
    g_variant = found;
    g_loaded = 1;
    return 1;
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

static void choose_variant(void)
{
    int first = first_allowed_candidate();
    if (first < 0) return;

    char directory[4096];
    own_directory(directory, sizeof directory);
    snprintf(g_why_none, sizeof g_why_none,
             "no NativeSoftmax build could be loaded from '%.1024s' for this CPU:", directory);

    for (int i = first; i < NSM_CANDIDATE_COUNT; ++i) {
        if (!cpu_can_run(&k_candidates[i])) {
            append(g_why_none, sizeof g_why_none, " %s: not supported by this CPU;",
                   k_candidates[i].isa);
            continue;
        }
        if (load_variant(directory, &k_candidates[i])) return;
    }
}

/* Loads the variant on the first call; returns 1 when one is loaded, else sets our per-thread
 * message and returns 0. */
static int ensure_variant(void)
{
    pthread_once(&g_once, choose_variant);
    if (g_loaded) return 1;
    snprintf(t_last_error, sizeof t_last_error, "%s", g_why_none);
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
    pthread_once(&g_once, choose_variant);
    return g_isa;
}

NSM_API const char* nsm_last_error(void)
{
    pthread_once(&g_once, choose_variant);
    if (g_loaded) return g_variant.nsm_last_error();
    return t_last_error;
}

/* ---------------------------------------------------------------------------------------------
 * Exports forwarded to the variant
 * ------------------------------------------------------------------------------------------- */
#define NSM_DEFINE_FORWARDER(name, params, args)                                                   \
    NSM_API nsm_status name params                                                                 \
    {                                                                                              \
        if (!ensure_variant()) return NSM_ERR_UNSUPPORTED_CPU;                                     \
        return g_variant.name args;                                                                \
    }
NSM_FORWARDED_OPERATIONS(NSM_DEFINE_FORWARDER)
#undef NSM_DEFINE_FORWARDER
