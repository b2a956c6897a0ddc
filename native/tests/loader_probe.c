/*
 * loader_probe.c — how the dispatcher's loader ends, seen from a program that links it (CTest runs
 * it in staged copies of lib/ with broken, foreign or missing variant files).
 *
 *   loader_probe --expect-isa ISA|any|none [--expect-message TEXT]... [--small-stack]
 *
 * The program's first call into the library is nsm_softmax_f32 on a 3 × 5 matrix, made on the main
 * thread or, with --small-stack, as the first act of a new thread whose stack is 16 KiB, or the
 * system's PTHREAD_STACK_MIN where that is larger (128 KiB on AArch64).
 * Then, on the main thread:
 *   ISA / any   the call succeeded, its probabilities agree with a float64 softmax to 1e-6
 *               relative, and nsm_isa() is ISA (any: a path other than "none");
 *   none        the call failed with NSM_ERR_UNSUPPORTED_CPU and wrote nothing, nsm_isa() is "none",
 *               and the calling thread's nsm_last_error() contains every TEXT.
 * In every case nsm_version_number(), nsm_version_string() and nsm_status_string() give the
 * dispatcher's own answers. Exits 0 when every check passes, 1 otherwise.
 */
#define _GNU_SOURCE /* PTHREAD_STACK_MIN: the running system's value */
#include "nativesoftmax.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROWS 3
#define COLS 5
#define MAX_EXPECTED 8
#define UNWRITTEN (-12345.0f) /* what the output holds before the call */

/* What the first call left behind, recorded by the thread that made it. */
typedef struct first_call {
    float logits[ROWS * COLS];
    float probabilities[ROWS * COLS];
    nsm_status status;
    const char* isa;
    char message[2048];
} first_call;

static int g_failures;

static void fail(const char* format, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char* format, ...)
{
    va_list args;
    va_start(args, format);
    fprintf(stderr, "FAIL: ");
    vfprintf(stderr, format, args);
    fprintf(stderr, "\n");
    va_end(args);
    ++g_failures;
}

/* The first act of the thread: one call, its results copied with as little stack as possible. */
static void* make_first_call(void* argument)
{
    first_call* call = argument;
    call->status = nsm_softmax_f32(ROWS, COLS, call->logits, COLS, call->probabilities, COLS);
    if (call->status != NSM_OK) {
        const char* message = nsm_last_error();
        strncpy(call->message, message ? message : "(null)", sizeof call->message - 1);
    }
    call->isa = nsm_isa();
    return NULL;
}

static int run_on_small_stack(first_call* call)
{
    pthread_attr_t attributes;
    pthread_t thread;
    size_t stack = 16384;
    if (stack < (size_t)PTHREAD_STACK_MIN) stack = (size_t)PTHREAD_STACK_MIN;
    if (pthread_attr_init(&attributes) != 0 || pthread_attr_setstacksize(&attributes, stack) != 0) {
        fprintf(stderr, "FAIL: cannot ask for a stack of %zu bytes\n", stack);
        return 0;
    }
    int error = pthread_create(&thread, &attributes, make_first_call, call);
    pthread_attr_destroy(&attributes);
    if (error != 0) {
        fprintf(stderr, "FAIL: pthread_create with a %zu-byte stack: %s\n", stack, strerror(error));
        return 0;
    }
    pthread_join(thread, NULL);
    printf("loader_probe: first call made on a thread with a %zu-byte stack\n", stack);
    return 1;
}

static void check_probabilities(const first_call* call)
{
    double worst = 0.0;
    for (int r = 0; r < ROWS; ++r) {
        const float* z = call->logits + r * COLS;
        double m = -INFINITY, sum = 0.0;
        for (int j = 0; j < COLS; ++j) m = fmax(m, z[j]);
        for (int j = 0; j < COLS; ++j) sum += exp((double)z[j] - m);
        for (int j = 0; j < COLS; ++j) {
            double exact = exp((double)z[j] - m) / sum;
            double error = fabs(call->probabilities[r * COLS + j] - exact) / exact;
            if (!(error <= worst)) worst = error; /* NaN counts as the worst */
        }
    }
    if (!(worst <= 1e-6)) fail("softmax is %.3g relative from the float64 reference", worst);
}

int main(int argc, char** argv)
{
    const char* expected_isa = NULL;
    const char* expected_text[MAX_EXPECTED];
    int expected_count = 0, small_stack = 0;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--expect-isa") == 0 && i + 1 < argc)
            expected_isa = argv[++i];
        else if (strcmp(argv[i], "--expect-message") == 0 && i + 1 < argc && expected_count < MAX_EXPECTED)
            expected_text[expected_count++] = argv[++i];
        else if (strcmp(argv[i], "--small-stack") == 0)
            small_stack = 1;
        else
            expected_isa = NULL, i = argc;
    }
    if (expected_isa == NULL) {
        fprintf(stderr, "usage: loader_probe --expect-isa ISA|any|none [--expect-message TEXT]... "
                        "[--small-stack]\n");
        return 2;
    }

    static first_call call;
    for (int i = 0; i < ROWS * COLS; ++i) {
        call.logits[i] = 0.75f * (float)((i * 7) % 11) - 3.0f;
        call.probabilities[i] = UNWRITTEN;
    }
    if (small_stack) {
        if (!run_on_small_stack(&call)) return 1;
    } else {
        make_first_call(&call);
    }

    const char* isa = call.isa ? call.isa : "(null)";
    printf("loader_probe: status %d, nsm_isa() = \"%s\"%s%s\n", (int)call.status, isa,
           call.status != NSM_OK ? ", message: " : "", call.status != NSM_OK ? call.message : "");
    if (strcmp(expected_isa, "none") == 0) {
        if (call.status != NSM_ERR_UNSUPPORTED_CPU)
            fail("the call returned %d (%s), expected NSM_ERR_UNSUPPORTED_CPU", (int)call.status,
                 nsm_status_string(call.status));
        for (int i = 0; i < ROWS * COLS; ++i)
            if (call.probabilities[i] != UNWRITTEN) {
                fail("a failed call wrote its output");
                break;
            }
        if (strcmp(isa, "none") != 0) fail("nsm_isa() = \"%s\", expected \"%s\"", isa, "none");
        for (int i = 0; i < expected_count; ++i)
            if (strstr(call.message, expected_text[i]) == NULL)
                fail("the message does not contain \"%s\"", expected_text[i]);
    } else {
        if (call.status != NSM_OK) fail("the call failed: %s: %s", nsm_status_string(call.status), call.message);
        else check_probabilities(&call);
        if (strcmp(expected_isa, "any") == 0 ? strcmp(isa, "none") == 0 : strcmp(isa, expected_isa) != 0)
            fail("nsm_isa() = \"%s\", expected \"%s\"", isa, expected_isa);
    }

    /* Answered by the dispatcher itself, whether a variant runs or not. */
    if (nsm_version_number() != NSM_VERSION_NUMBER)
        fail("nsm_version_number() = %d, header %d", (int)nsm_version_number(), NSM_VERSION_NUMBER);
    if (strcmp(nsm_version_string(), NSM_VERSION_STRING) != 0)
        fail("nsm_version_string() = \"%s\", header \"%s\"", nsm_version_string(), NSM_VERSION_STRING);
    const char* text = nsm_status_string(NSM_ERR_UNSUPPORTED_CPU);
    if (text == NULL || text[0] == '\0' || strcmp(text, "unknown status") == 0)
        fail("nsm_status_string(NSM_ERR_UNSUPPORTED_CPU) = \"%s\"", text ? text : "(null)");

    printf("loader_probe: %s\n", g_failures == 0 ? "ok" : "FAILED");
    return g_failures == 0 ? 0 : 1;
}
