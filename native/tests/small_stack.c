/*
 * small_stack.c — every kind of operation as the first act of a thread whose stack is 16 KiB (or
 * the system's PTHREAD_STACK_MIN where that is larger), as the header allows: softmax, log_softmax,
 * their backward passes and hard-label and soft-target cross-entropy with class weights and label
 * smoothing, float32 and float64, and the bfloat16 cross-entropies, each on 64 rows of 16, 32 and
 * 64 columns (rows across vector lanes at every width up to 512 bits, whose tiles are the largest
 * buffers a call uses) and of 100 columns (the row-by-row loops). Each call runs on a fresh thread,
 * so each pays the runtime's first call on a thread too. A call that overflows the stack crashes
 * the program; one that returns must return NSM_OK (its values are the other suites' business).
 *
 *   small_stack            exits 0 when every call returned NSM_OK, 1 otherwise
 */
#define _GNU_SOURCE /* PTHREAD_STACK_MIN: the running system's value */
#include "nativesoftmax.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define ROWS 64
#define MAX_COLS 100

enum operation { SOFTMAX, LOG_SOFTMAX, SOFTMAX_BACKWARD, LOG_SOFTMAX_BACKWARD, HARD, SOFT, OPERATIONS };
static const char* const operation_names[OPERATIONS] = {
    "softmax", "log_softmax", "softmax_backward", "log_softmax_backward", "cross_entropy", "cross_entropy_soft"};

static float f32_in[ROWS * MAX_COLS], f32_other[ROWS * MAX_COLS], f32_out[ROWS * MAX_COLS], f32_weight[MAX_COLS];
static double f64_in[ROWS * MAX_COLS], f64_other[ROWS * MAX_COLS], f64_out[ROWS * MAX_COLS], f64_weight[MAX_COLS];
static nsm_bfloat16 bf16_in[ROWS * MAX_COLS], bf16_other[ROWS * MAX_COLS], bf16_out[ROWS * MAX_COLS];
static float f32_loss[ROWS];
static double f64_loss[ROWS];
static int64_t labels[ROWS];

typedef struct job {
    enum operation operation;
    int dtype; /* 0 float32, 1 float64, 2 bfloat16 (cross-entropy only) */
    int64_t cols;
    nsm_status status;
} job;

/* The six operations' cases of precision D (0 float32, 1 float64), on its arrays P##in, P##out,
 * P##other, P##weight and P##loss and the functions nsm_<operation>_S. */
#define EVERY_OPERATION(D, P, S)                                                                                  \
    case D * OPERATIONS + SOFTMAX: j->status = nsm_softmax_##S(ROWS, c, P##in, c, P##out, c); break;             \
    case D * OPERATIONS + LOG_SOFTMAX: j->status = nsm_log_softmax_##S(ROWS, c, P##in, c, P##out, c); break;     \
    case D * OPERATIONS + SOFTMAX_BACKWARD:                                                                       \
        j->status = nsm_softmax_backward_##S(ROWS, c, P##other, c, P##in, c, P##out, c);                         \
        break;                                                                                                    \
    case D * OPERATIONS + LOG_SOFTMAX_BACKWARD:                                                                   \
        j->status = nsm_log_softmax_backward_##S(ROWS, c, P##other, c, P##in, c, P##out, c);                     \
        break;                                                                                                    \
    case D * OPERATIONS + HARD:                                                                                   \
        j->status = nsm_cross_entropy_##S(ROWS, c, P##in, c, labels, P##weight, &options, P##loss, P##out, c);   \
        break;                                                                                                    \
    case D * OPERATIONS + SOFT:                                                                                   \
        j->status = nsm_cross_entropy_soft_##S(ROWS, c, P##in, c, P##other, c, P##weight, &options, P##loss,     \
                                               P##out, c);                                                        \
        break;

static void* first_call(void* argument)
{
    job* j = argument;
    int64_t c = j->cols;
    nsm_cross_entropy_options options = NSM_CROSS_ENTROPY_OPTIONS_INIT;
    options.reduction = NSM_REDUCTION_NONE;
    options.label_smoothing = 0.1;
    switch (j->dtype * OPERATIONS + j->operation) {
    EVERY_OPERATION(0, f32_, f32)
    EVERY_OPERATION(1, f64_, f64)
    case 2 * OPERATIONS + HARD: j->status = nsm_cross_entropy_bf16(ROWS, c, bf16_in, c, labels, f32_weight, &options, f32_loss, bf16_out, c); break;
    case 2 * OPERATIONS + SOFT: j->status = nsm_cross_entropy_soft_bf16(ROWS, c, bf16_in, c, bf16_other, c, f32_weight, &options, f32_loss, bf16_out, c); break;
    default: j->status = NSM_OK; break; /* not a combination this test makes */
    }
    return NULL;
}

int main(void)
{
    for (int i = 0; i < ROWS * MAX_COLS; i++) {
        f32_in[i] = (float)((i * 37) % 101) / 10.0f - 5.0f;
        f32_other[i] = (float)((i * 11) % 13) / 130.0f; /* soft targets and upstream gradients */
        f64_in[i] = f32_in[i];
        f64_other[i] = f32_other[i];
        uint32_t bits;
        memcpy(&bits, &f32_in[i], sizeof bits);
        bf16_in[i].bits = (uint16_t)(bits >> 16);
        memcpy(&bits, &f32_other[i], sizeof bits);
        bf16_other[i].bits = (uint16_t)(bits >> 16);
    }
    for (int j = 0; j < MAX_COLS; j++) {
        f32_weight[j] = 0.5f + (float)(j % 4) * 0.25f;
        f64_weight[j] = f32_weight[j];
    }
    for (int r = 0; r < ROWS; r++) {
        labels[r] = (r * 7) % 16;
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
    static const int64_t widths[] = {16, 32, 64, 100};
    int failures = 0, calls = 0;
    for (int dtype = 0; dtype < 3; dtype++) {
        for (int operation = 0; operation < OPERATIONS; operation++) {
            if (dtype == 2 && operation != HARD && operation != SOFT) {
                continue;
            }
            for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
                job j = {(enum operation)operation, dtype, widths[w], NSM_ERR_INTERNAL};
                pthread_t thread;
                if (pthread_create(&thread, &attributes, first_call, &j) != 0 || pthread_join(thread, NULL) != 0) {
                    fprintf(stderr, "FAIL: cannot run a thread with a %zu-byte stack\n", stack);
                    return 1;
                }
                ++calls;
                if (j.status != NSM_OK) {
                    fprintf(stderr, "FAIL: %s %s %d x %lld on a %zu-byte stack: %s\n", operation_names[operation],
                            dtype == 0 ? "float32" : dtype == 1 ? "float64" : "bfloat16", ROWS, (long long)j.cols,
                            stack, nsm_status_string(j.status));
                    ++failures;
                }
            }
        }
    }
    printf("%d calls on %zu-byte stacks (%s path), %d failed\n", calls, stack, nsm_isa(), failures);
    return failures == 0 ? 0 : 1;
}
