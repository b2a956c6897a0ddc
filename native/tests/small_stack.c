/*
 * small_stack.c — every operation of the header as the first act of a thread whose stack is
 * 16 KiB (or the system's PTHREAD_STACK_MIN where that is larger), as the header allows: softmax,
 * log_softmax, their backward passes, the Jacobian, hard-label and soft-target cross-entropy with
 * class weights and label smoothing, and the vocabulary split's partial, merge and finish, in
 * float32 and float64; all but the split in bfloat16 and float16. Each on 64 rows of 16, 32
 * and 64 columns (rows across vector lanes at every width up to 512 bits, whose tiles are the
 * largest buffers a short row uses) and of 100 columns (the row-by-row loops), and on one row of
 * 2^20 columns (a long row by the most chunks that keep their statistics on the stack; the
 * Jacobian, whose output would be 2^40 elements, only on the short rows). Each call runs on a
 * fresh thread, so each pays the runtime's first call on a thread too. A call that overflows the
 * stack crashes the program; one that returns must return NSM_OK (its values are the other
 * suites' business).
 *
 *   small_stack            exits 0 when every call returned NSM_OK, 1 otherwise
 *   small_stack ISA        the same, after checking that nsm_isa() is ISA (exits 77, skipped,
 *                          when it is not: the CPU lacks that path); the runtime then starts on
 *                          the main thread, which the form without ISA leaves to a 16 KiB one
 */
#define _GNU_SOURCE /* PTHREAD_STACK_MIN: the running system's value */
#include "nativesoftmax.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define ROWS 64
#define MAX_COLS 100
#define LONG_COLS (256 * 4096) /* LongRow: 4096-column chunks, at most 256 keep their statistics */
#define ELEMENTS LONG_COLS     /* ≥ ROWS · MAX_COLS and MAX_COLS² (the Jacobian) */

enum operation {
    SOFTMAX, LOG_SOFTMAX, SOFTMAX_BACKWARD, LOG_SOFTMAX_BACKWARD, JACOBIAN, HARD, SOFT,
    PARTIAL, PARTIAL_SOFT, MERGE, FINISH, FINISH_SOFT, OPERATIONS
};
static const char* const operation_names[OPERATIONS] = {
    "softmax", "log_softmax", "softmax_backward", "log_softmax_backward", "softmax_jacobian", "cross_entropy",
    "cross_entropy_soft", "cross_entropy_partial", "cross_entropy_partial_soft", "cross_entropy_merge",
    "cross_entropy_finish", "cross_entropy_finish_soft"};

enum precision { F32, F64, BF16, F16, PRECISIONS };
static const char* const precision_names[PRECISIONS] = {"float32", "float64", "bfloat16", "float16"};

static float f32_in[ELEMENTS], f32_other[ELEMENTS], f32_out[ELEMENTS], f32_weight[LONG_COLS];
static double f64_in[ELEMENTS], f64_other[ELEMENTS], f64_out[ELEMENTS], f64_weight[LONG_COLS];
static nsm_bfloat16 bf16_in[ELEMENTS], bf16_other[ELEMENTS], bf16_out[ELEMENTS];
static nsm_float16 f16_in[ELEMENTS], f16_other[ELEMENTS], f16_out[ELEMENTS];
static float f32_loss[ROWS];
static double f64_loss[ROWS];
static int64_t labels[ROWS];
static nsm_cross_entropy_stats stats[ROWS], other_stats[ROWS], merged[ROWS];

typedef struct job {
    enum operation operation;
    enum precision precision;
    int64_t rows, cols;
    nsm_status status;
    char message[512]; /* nsm_last_error() of the call's thread, when it failed */
} job;

/* The operations of one storage type S (f32, f64, bf16, f16) on its arrays P##in, P##out,
 * P##other, its weight W and its loss L, for precision D. */
#define EVERY_ROW_OPERATION(D, P, S, W, L)                                                                        \
    case D * OPERATIONS + SOFTMAX: j->status = nsm_softmax_##S(r, c, P##in, c, P##out, c); break;                \
    case D * OPERATIONS + LOG_SOFTMAX: j->status = nsm_log_softmax_##S(r, c, P##in, c, P##out, c); break;        \
    case D * OPERATIONS + SOFTMAX_BACKWARD:                                                                       \
        j->status = nsm_softmax_backward_##S(r, c, P##other, c, P##in, c, P##out, c);                            \
        break;                                                                                                    \
    case D * OPERATIONS + LOG_SOFTMAX_BACKWARD:                                                                   \
        j->status = nsm_log_softmax_backward_##S(r, c, P##other, c, P##in, c, P##out, c);                        \
        break;                                                                                                    \
    case D * OPERATIONS + JACOBIAN: j->status = nsm_softmax_jacobian_##S(c, P##in, P##out, c); break;            \
    case D * OPERATIONS + HARD:                                                                                   \
        j->status = nsm_cross_entropy_##S(r, c, P##in, c, labels, W, &options, L, P##out, c);                    \
        break;                                                                                                    \
    case D * OPERATIONS + SOFT:                                                                                   \
        j->status = nsm_cross_entropy_soft_##S(r, c, P##in, c, P##other, c, W, &options, L, P##out, c);          \
        break;

/* The vocabulary split of a float type S (one shard holding every column), for precision D. */
#define EVERY_SPLIT_OPERATION(D, P, S)                                                                            \
    case D * OPERATIONS + PARTIAL:                                                                                \
        j->status = nsm_cross_entropy_partial_##S(r, c, 0, c, P##in, c, labels, P##weight, &options, stats);     \
        break;                                                                                                    \
    case D * OPERATIONS + PARTIAL_SOFT:                                                                           \
        j->status = nsm_cross_entropy_partial_soft_##S(r, c, 0, c, P##in, c, P##other, c, P##weight, &options,   \
                                                       stats);                                                    \
        break;                                                                                                    \
    case D * OPERATIONS + FINISH:                                                                                 \
        j->status = nsm_cross_entropy_finish_##S(r, c, 0, c, P##in, c, labels, P##weight, merged, &options,      \
                                                 P##loss, P##out, c);                                             \
        break;                                                                                                    \
    case D * OPERATIONS + FINISH_SOFT:                                                                            \
        j->status = nsm_cross_entropy_finish_soft_##S(r, c, 0, c, P##in, c, P##other, c, P##weight, merged,      \
                                                      &options, P##loss, P##out, c);                              \
        break;

static void* first_call(void* argument)
{
    job* j = argument;
    int64_t r = j->rows, c = j->cols;
    nsm_cross_entropy_options options = NSM_CROSS_ENTROPY_OPTIONS_INIT;
    options.reduction = NSM_REDUCTION_NONE;
    options.label_smoothing = 0.1;
    switch (j->precision * OPERATIONS + j->operation) {
    EVERY_ROW_OPERATION(F32, f32_, f32, f32_weight, f32_loss)
    EVERY_ROW_OPERATION(F64, f64_, f64, f64_weight, f64_loss)
    EVERY_ROW_OPERATION(BF16, bf16_, bf16, f32_weight, f32_loss)
    EVERY_ROW_OPERATION(F16, f16_, f16, f32_weight, f32_loss)
    EVERY_SPLIT_OPERATION(F32, f32_, f32)
    EVERY_SPLIT_OPERATION(F64, f64_, f64)
    case F32 * OPERATIONS + MERGE: j->status = nsm_cross_entropy_merge(r, stats, other_stats, merged); break;
    default: j->status = NSM_ERR_INTERNAL; break; /* main() asks only for the cases above */
    }
    if (j->status != NSM_OK) {
        snprintf(j->message, sizeof j->message, "%s", nsm_last_error());
    }
    return NULL;
}

/* Whether main() runs this combination: the split only in float32 and float64, the merge (which
 * has no element type) once per shape, the Jacobian on short rows. */
static int is_case(enum precision p, enum operation o, int64_t cols)
{
    if (o == MERGE) return p == F32;
    if (o >= PARTIAL) return p == F32 || p == F64;
    return o != JACOBIAN || cols <= MAX_COLS;
}

/* A float's bits as float16, truncated (the inputs here are normal float16 values or 0). */
static uint16_t float16_bits(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    uint32_t sign = (bits >> 16) & 0x8000u, magnitude = bits & 0x7FFFFFFFu;
    if (magnitude < (113u << 23)) return (uint16_t)sign; /* below 2^−14: 0 */
    return (uint16_t)(sign | (((magnitude >> 23) - 112u) << 10) | ((magnitude >> 13) & 0x3FFu));
}

int main(int argc, char** argv)
{
    if (argc > 1 && strcmp(nsm_isa(), argv[1]) != 0) {
        printf("SKIP: the %s path was asked for, nsm_isa() is %s\n", argv[1], nsm_isa());
        return 77;
    }
    for (int i = 0; i < ELEMENTS; i++) {
        f32_in[i] = (float)((i * 37) % 101) / 10.0f - 5.0f;
        f32_other[i] = (float)((i * 11) % 13) / 130.0f; /* soft targets and upstream gradients */
        f64_in[i] = f32_in[i];
        f64_other[i] = f32_other[i];
        uint32_t bits;
        memcpy(&bits, &f32_in[i], sizeof bits);
        bf16_in[i].bits = (uint16_t)(bits >> 16);
        f16_in[i].bits = float16_bits(f32_in[i]);
        memcpy(&bits, &f32_other[i], sizeof bits);
        bf16_other[i].bits = (uint16_t)(bits >> 16);
        f16_other[i].bits = float16_bits(f32_other[i]);
    }
    for (int j = 0; j < LONG_COLS; j++) {
        f32_weight[j] = 0.5f + (float)(j % 4) * 0.25f;
        f64_weight[j] = f32_weight[j];
    }
    for (int r = 0; r < ROWS; r++) {
        labels[r] = (r * 7) % 16;
    }
    /* The merge's operands: a shard's statistics (one row's maximum, its sums), valid as the
     * header defines them. */
    for (int r = 0; r < ROWS; r++) {
        stats[r] = (nsm_cross_entropy_stats){1.0, 1.0, 2.5, 1.0, 3.0, 1.0, 0.0};
        other_stats[r] = (nsm_cross_entropy_stats){2.0, 1.0, 0.5, 0.0, 0.0, 0.0, 0.0};
        merged[r] = (nsm_cross_entropy_stats){2.0, 1.0, 1.5, 1.0, 4.0, 1.0, 0.0};
    }

    size_t stack = 16384;
    if (stack < (size_t)PTHREAD_STACK_MIN) {
        stack = (size_t)PTHREAD_STACK_MIN;
    }
    pthread_attr_t attributes;
    if (pthread_attr_init(&attributes) != 0 || pthread_attr_setstacksize(&attributes, stack) != 0) {
        fprintf(stderr, "FAIL: cannot ask for a stack of %zu bytes\n", stack);
        return 1;
    }
    static const int64_t shapes[][2] = {{ROWS, 16}, {ROWS, 32}, {ROWS, 64}, {ROWS, MAX_COLS}, {1, LONG_COLS}};
    int failures = 0, calls = 0;
    for (int precision = 0; precision < PRECISIONS; precision++) {
        for (int operation = 0; operation < OPERATIONS; operation++) {
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
                if (!is_case((enum precision)precision, (enum operation)operation, shapes[s][1])) {
                    continue;
                }
                job j = {(enum operation)operation, (enum precision)precision, shapes[s][0], shapes[s][1], NSM_ERR_INTERNAL, ""};
                pthread_t thread;
                if (pthread_create(&thread, &attributes, first_call, &j) != 0 || pthread_join(thread, NULL) != 0) {
                    fprintf(stderr, "FAIL: cannot run a thread with a %zu-byte stack\n", stack);
                    return 1;
                }
                ++calls;
                if (j.status != NSM_OK) {
                    fprintf(stderr, "FAIL: %s %s %lld x %lld on a %zu-byte stack: %s: %s\n", operation_names[operation],
                            precision_names[precision], (long long)j.rows, (long long)j.cols, stack,
                            nsm_status_string(j.status), j.message);
                    ++failures;
                }
            }
        }
    }
    printf("%d calls on %zu-byte stacks (%s path), %d failed\n", calls, stack, nsm_isa(), failures);
    return failures == 0 ? 0 : 1;
}
