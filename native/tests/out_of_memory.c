/*
 * out_of_memory.c — calls whose scratch the system refuses (an address-space limit, as under
 * `ulimit -v`). The header's rules: such a call returns NSM_ERR_OUT_OF_MEMORY having written
 * nothing, and a worker thread that cannot get its scratch leaves the call to the other threads.
 *
 * Each case lowers RLIMIT_AS to the address space in use plus a margin, makes one call and
 * raises the limit again:
 *   - a bfloat16 softmax, a bfloat16 cross-entropy and a float16 Jacobian whose float32 scratch
 *     (a row of 2^24 floats; 4096·4097 floats) is larger than the margin: the status must be
 *     NSM_ERR_OUT_OF_MEMORY, the message must say "out of memory", and every output must keep
 *     the bytes it had;
 *   - a bfloat16 softmax on 2 threads, 8 rows of 2^21 classes, each thread needing a scratch of
 *     one row (8 MiB), with a margin of 12 MiB: room for the caller's scratch but not for a
 *     worker's too. The call must succeed and give the bits of a one-thread call made before.
 *     Three times: the case passes as well when the worker does not join (rows of about 3 ms
 *     make it likely to); without the worker's reservation, it failed.
 *
 *   out_of_memory    exits 0 when every case holds, 77 where the limit cannot be set or
 *                    /proc/self/status cannot be read
 */
#define _GNU_SOURCE /* getline */
#include "nativesoftmax.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define LONG_COLS (1L << 24)
#define JACOBIAN_COLS 4096L
#define SHARED_ROWS 8L
#define SHARED_COLS (1L << 21)
#define MIB (1L << 20)

static int failures;

static void fail(const char* what, const char* detail)
{
    fprintf(stderr, "FAIL: %s: %s\n", what, detail);
    ++failures;
}

/* The address space this process maps now (VmSize), in bytes, or -1. */
static long mapped_bytes(void)
{
    FILE* status = fopen("/proc/self/status", "r");
    char* line = NULL;
    size_t capacity = 0;
    long kib = -1;
    while (status != NULL && getline(&line, &capacity, status) > 0) {
        if (sscanf(line, "VmSize: %ld kB", &kib) == 1) break;
    }
    free(line);
    if (status != NULL) fclose(status);
    return kib < 0 ? -1 : kib * 1024;
}

/* RLIMIT_AS's soft limit: the address space in use plus margin, or back to the hard limit. */
static int limit_address_space(long margin)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_AS, &limit) != 0) return 0;
    long mapped = mapped_bytes();
    if (mapped < 0) return 0;
    limit.rlim_cur = margin < 0 ? limit.rlim_max : (rlim_t)(mapped + margin);
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_cur > limit.rlim_max) return 0;
    return setrlimit(RLIMIT_AS, &limit) == 0;
}

/* A refused call: NSM_ERR_OUT_OF_MEMORY, a message that says so, and outputs as they were. */
static void check_refused(const char* what, nsm_status status, const void* output, const void* before, size_t bytes)
{
    if (status != NSM_ERR_OUT_OF_MEMORY) {
        char detail[300];
        snprintf(detail, sizeof detail, "status %d (%s), expected NSM_ERR_OUT_OF_MEMORY; message \"%s\"", status,
                 nsm_status_string(status), nsm_last_error());
        fail(what, detail);
    } else if (strstr(nsm_last_error(), "out of memory") == NULL) {
        fail(what, nsm_last_error());
    }
    if (memcmp(output, before, bytes) != 0) fail(what, "an output was written");
}

int main(void)
{
    /* Every allocation of 1 MiB or more maps memory of its own, and every thread shares one
       arena, so that the limit sees each allocation: glibc would otherwise raise its threshold
       after a free, and serve a thread from an arena of its own, whose address space (64 MiB) is
       reserved when the arena is made. */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    mallopt(M_ARENA_MAX, 1);
    /* Everything allocated, and the runtime, the workers and their small scratch started, before
       any limit: only the call's own scratch is asked for under it. */
    nsm_bfloat16* logits = malloc(LONG_COLS * sizeof *logits);
    nsm_bfloat16* probabilities = malloc(LONG_COLS * sizeof *probabilities);
    nsm_bfloat16* sentinel = malloc(LONG_COLS * sizeof *sentinel);
    nsm_bfloat16* grad = malloc(LONG_COLS * sizeof *grad);
    nsm_float16* jacobian_logits = malloc(JACOBIAN_COLS * sizeof *jacobian_logits);
    nsm_float16* jacobian = malloc(JACOBIAN_COLS * JACOBIAN_COLS * sizeof *jacobian);
    nsm_float16* jacobian_before = malloc(JACOBIAN_COLS * JACOBIAN_COLS * sizeof *jacobian_before);
    nsm_bfloat16* shared_expected = malloc(SHARED_ROWS * SHARED_COLS * sizeof *shared_expected);
    if (!logits || !probabilities || !sentinel || !grad || !jacobian_logits || !jacobian || !jacobian_before ||
        !shared_expected) {
        fprintf(stderr, "FAIL: cannot allocate the test's buffers\n");
        return 1;
    }
    for (long j = 0; j < LONG_COLS; j++) {
        logits[j].bits = (uint16_t)(0x3F80u + (uint32_t)(j % 97)); /* 1.0 and a little more */
        sentinel[j].bits = (uint16_t)(0x7FC0u + (uint32_t)(j % 13)); /* NaNs no call writes */
    }
    for (long j = 0; j < JACOBIAN_COLS; j++) jacobian_logits[j].bits = (uint16_t)(0x3C00u + (uint32_t)(j % 89));
    for (long j = 0; j < JACOBIAN_COLS * JACOBIAN_COLS; j++) jacobian_before[j].bits = (uint16_t)(0x7E00u + (uint32_t)(j % 7));
    memcpy(jacobian, jacobian_before, JACOBIAN_COLS * JACOBIAN_COLS * sizeof *jacobian);

    nsm_set_num_threads(1);
    if (nsm_softmax_bf16(SHARED_ROWS, SHARED_COLS, logits, SHARED_COLS, shared_expected, SHARED_COLS) != NSM_OK) {
        fprintf(stderr, "FAIL: the one-thread softmax: %s\n", nsm_last_error());
        return 1;
    }
    nsm_set_num_threads(2);
    nsm_softmax_bf16(256, 4096, logits, 4096, probabilities, 4096); /* the worker started */
    if (!limit_address_space(-1)) {
        printf("SKIP: RLIMIT_AS cannot be set, or /proc/self/status read\n");
        return 77;
    }

    /* A 16-bit row's float32 copy: 64 MiB against a margin of 32. */
    memcpy(probabilities, sentinel, LONG_COLS * sizeof *probabilities);
    limit_address_space(32 * MIB);
    nsm_status status = nsm_softmax_bf16(1, LONG_COLS, logits, LONG_COLS, probabilities, LONG_COLS);
    limit_address_space(-1);
    check_refused("bfloat16 softmax of 1 x 2^24", status, probabilities, sentinel, LONG_COLS * sizeof *probabilities);

    int64_t target = 5;
    float loss = -1.0f, loss_before = -1.0f;
    memcpy(grad, sentinel, LONG_COLS * sizeof *grad);
    limit_address_space(32 * MIB);
    status = nsm_cross_entropy_bf16(1, LONG_COLS, logits, LONG_COLS, &target, NULL, NULL, &loss, grad, LONG_COLS);
    limit_address_space(-1);
    check_refused("bfloat16 cross-entropy of 1 x 2^24 (grad)", status, grad, sentinel, LONG_COLS * sizeof *grad);
    check_refused("bfloat16 cross-entropy of 1 x 2^24 (loss)", status, &loss, &loss_before, sizeof loss);

    /* The Jacobian's scratch: 4096·4097 floats, 64 MiB, against 32. */
    limit_address_space(32 * MIB);
    status = nsm_softmax_jacobian_f16(JACOBIAN_COLS, jacobian_logits, jacobian, JACOBIAN_COLS);
    limit_address_space(-1);
    check_refused("float16 Jacobian of 4096", status, jacobian, jacobian_before,
                  JACOBIAN_COLS * JACOBIAN_COLS * sizeof *jacobian);

    /* Room for one thread's 8 MiB scratch, not two: the worker stays out, the caller does it all. */
    for (int round = 0; round < 3; round++) {
        memcpy(probabilities, sentinel, SHARED_ROWS * SHARED_COLS * sizeof *probabilities);
        limit_address_space(12 * MIB);
        status = nsm_softmax_bf16(SHARED_ROWS, SHARED_COLS, logits, SHARED_COLS, probabilities, SHARED_COLS);
        limit_address_space(-1);
        if (status != NSM_OK) {
            char detail[300];
            snprintf(detail, sizeof detail, "status %d (%s): %s", status, nsm_status_string(status), nsm_last_error());
            fail("bfloat16 softmax of 8 x 2^21 on 2 threads, room for one scratch", detail);
        } else if (memcmp(probabilities, shared_expected, SHARED_ROWS * SHARED_COLS * sizeof *probabilities) != 0) {
            fail("bfloat16 softmax of 8 x 2^21 on 2 threads, room for one scratch", "differs from the one-thread result");
        }
    }

    printf("out_of_memory (%s path): %d failed\n", nsm_isa(), failures);
    return failures ? 1 : 0;
}
