/*
 * test_threads.c — the "threads" group: the worker threads change no bit of any result, the
 * thread-count setting validates its input, and a process forked after the workers started
 * still computes (on its calling thread) rather than waiting for workers it does not have; calls
 * from many threads at once, some taking the workers and some running alone, each give the bits of
 * one thread.
 */
#define _GNU_SOURCE /* fork, alarm */
#include "harness_support.h"
#include "test_groups.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Every output of every operation, at one thread count, for one shape and dtype. */
typedef struct outputs {
    matrix softmax, log_softmax, softmax_backward, log_softmax_backward;
    matrix grad[3], soft_grad[3]; /* per reduction: none, sum, mean */
    matrix loss[3], soft_loss[3];
} outputs;

static void compute(dtype t, int64_t rows, int64_t cols, const matrix* z, const matrix* upstream,
                    const matrix* soft, const int64_t* labels, const matrix* weight, outputs* out)
{
    out->softmax = matrix_new(t, rows, cols, cols);
    out->log_softmax = matrix_new(t, rows, cols, cols);
    out->softmax_backward = matrix_new(t, rows, cols, cols);
    out->log_softmax_backward = matrix_new(t, rows, cols, cols);
    check(call_softmax(t, 0, rows, cols, matrix_data(z), cols, matrix_data(&out->softmax), cols) == NSM_OK, "softmax failed");
    check(call_softmax(t, 1, rows, cols, matrix_data(z), cols, matrix_data(&out->log_softmax), cols) == NSM_OK, "log_softmax failed");
    check(call_backward(t, 0, rows, cols, matrix_data(upstream), cols, matrix_data(&out->softmax), cols,
                        matrix_data(&out->softmax_backward), cols) == NSM_OK, "softmax_backward failed");
    check(call_backward(t, 1, rows, cols, matrix_data(upstream), cols, matrix_data(&out->log_softmax), cols,
                        matrix_data(&out->log_softmax_backward), cols) == NSM_OK, "log_softmax_backward failed");
    for (int reduction = 0; reduction < 3; ++reduction) {
        nsm_cross_entropy_options options = NSM_CROSS_ENTROPY_OPTIONS_INIT;
        options.reduction = reduction;
        options.label_smoothing = 0.05;
        int64_t losses = reduction == NSM_REDUCTION_NONE ? rows : 1;
        out->loss[reduction] = matrix_new(t, 1, losses, losses);
        out->grad[reduction] = matrix_new(t, rows, cols, cols);
        out->soft_loss[reduction] = matrix_new(t, 1, losses, losses);
        out->soft_grad[reduction] = matrix_new(t, rows, cols, cols);
        check(call_cross_entropy(t, rows, cols, matrix_data(z), cols, labels, matrix_data(weight), &options,
                                 matrix_data(&out->loss[reduction]), matrix_data(&out->grad[reduction]), cols) == NSM_OK,
              "cross_entropy (reduction %d) failed: %s", reduction, nsm_last_error());
        check(call_cross_entropy_soft(t, rows, cols, matrix_data(z), cols, matrix_data(soft), cols, matrix_data(weight),
                                      &options, matrix_data(&out->soft_loss[reduction]),
                                      matrix_data(&out->soft_grad[reduction]), cols) == NSM_OK,
              "cross_entropy_soft (reduction %d) failed: %s", reduction, nsm_last_error());
    }
}

static void free_outputs(outputs* o)
{
    matrix_free(&o->softmax);
    matrix_free(&o->log_softmax);
    matrix_free(&o->softmax_backward);
    matrix_free(&o->log_softmax_backward);
    for (int r = 0; r < 3; ++r) {
        matrix_free(&o->grad[r]);
        matrix_free(&o->soft_grad[r]);
        matrix_free(&o->loss[r]);
        matrix_free(&o->soft_loss[r]);
    }
}

static int same_bits(const matrix* a, const matrix* b)
{
    return memcmp(matrix_data(a), matrix_data(b), extent(a->rows, a->cols, a->ld) * dtype_size(a->type)) == 0;
}

static void compare(const outputs* a, const outputs* b, int threads)
{
#define SAME(field, name) check(same_bits(&a->field, &b->field), "%s differs between 1 and %d threads", name, threads)
    SAME(softmax, "softmax");
    SAME(log_softmax, "log_softmax");
    SAME(softmax_backward, "softmax_backward");
    SAME(log_softmax_backward, "log_softmax_backward");
    static const char* const names[3] = {"none", "sum", "mean"};
    for (int r = 0; r < 3; ++r) {
        check(same_bits(&a->loss[r], &b->loss[r]), "cross_entropy %s loss differs between 1 and %d threads", names[r], threads);
        check(same_bits(&a->grad[r], &b->grad[r]), "cross_entropy %s grad differs between 1 and %d threads", names[r], threads);
        check(same_bits(&a->soft_loss[r], &b->soft_loss[r]), "soft cross_entropy %s loss differs between 1 and %d threads", names[r], threads);
        check(same_bits(&a->soft_grad[r], &b->soft_grad[r]), "soft cross_entropy %s grad differs between 1 and %d threads", names[r], threads);
    }
#undef SAME
}

static void same_bits_at_every_thread_count(dtype t, int64_t rows, int64_t cols)
{
    set_context("threads dtype=%s %lldx%lld", dtype_name(t), (long long)rows, (long long)cols);
    rng g = rng_new(case_seed(77, (uint64_t)rows, (uint64_t)cols, (uint64_t)t));
    matrix z = matrix_new(t, rows, cols, cols), upstream = matrix_new(t, rows, cols, cols);
    matrix soft = matrix_new(t, rows, cols, cols), weight = matrix_new(t, 1, cols, cols);
    int64_t* labels = malloc((size_t)rows * sizeof *labels);
    for (int64_t r = 0; r < rows; ++r) {
        labels[r] = rng_below(&g, 5) == 0 ? -100 : rng_below(&g, cols);
        for (int64_t c = 0; c < cols; ++c) {
            matrix_set(&z, r, c, rng_uniform(&g, -30, 30));
            matrix_set(&upstream, r, c, rng_uniform(&g, -1, 1));
            matrix_set(&soft, r, c, rng_uniform(&g, 0, 2.0 / (double)cols));
        }
    }
    for (int64_t c = 0; c < cols; ++c) matrix_set(&weight, 0, c, rng_uniform(&g, 0.5, 2));

    static const int counts[] = {1, 2, 7};
    outputs first;
    for (int i = 0; i < 3; ++i) {
        check(nsm_set_num_threads(counts[i]) == NSM_OK, "nsm_set_num_threads(%d) failed", counts[i]);
        outputs now;
        compute(t, rows, cols, &z, &upstream, &soft, labels, &weight, &now);
        if (i == 0) {
            first = now;
        } else {
            compare(&first, &now, counts[i]);
            free_outputs(&now);
        }
    }
    free_outputs(&first);
    free(labels);
    matrix_free(&z);
    matrix_free(&upstream);
    matrix_free(&soft);
    matrix_free(&weight);
}

static void thread_count_setting(void)
{
    set_context("nsm_set_num_threads / nsm_get_num_threads");
    const char* expected_default = getenv("NSM_EXPECT_DEFAULT_THREADS");
    if (expected_default != NULL) {
        /* Before any nsm_set_num_threads: the default from NATIVESOFTMAX_NUM_THREADS. */
        check(nsm_get_num_threads() == atoi(expected_default), "default thread count %d, expected %s",
              nsm_get_num_threads(), expected_default);
    }
    int32_t initial = nsm_get_num_threads();
    check(initial >= 1 && initial <= 1024, "nsm_get_num_threads() = %d, outside [1, 1024]", initial);
    check(nsm_set_num_threads(3) == NSM_OK && nsm_get_num_threads() == 3, "set 3, got %d", nsm_get_num_threads());
    check(nsm_set_num_threads(-1) == NSM_ERR_INVALID_ARGUMENT, "nsm_set_num_threads(-1) accepted");
    check(strstr(nsm_last_error(), "num_threads") != NULL, "message \"%s\" does not name num_threads", nsm_last_error());
    check(nsm_set_num_threads(1025) == NSM_ERR_INVALID_ARGUMENT, "nsm_set_num_threads(1025) accepted");
    check(nsm_get_num_threads() == 3, "a refused count changed the setting to %d", nsm_get_num_threads());
    check(nsm_set_num_threads(0) == NSM_OK, "nsm_set_num_threads(0) failed");
    if (expected_default != NULL)
        check(nsm_get_num_threads() == atoi(expected_default), "0 restored %d, expected %s",
              nsm_get_num_threads(), expected_default);
}

/* The threads of this process (entries of /proc/self/task), or -1 where that cannot be read. */
static int thread_total(void)
{
    DIR* tasks = opendir("/proc/self/task");
    if (tasks == NULL) return -1;
    int total = 0;
    for (struct dirent* entry; (entry = readdir(tasks)) != NULL;)
        total += entry->d_name[0] != '.';
    closedir(tasks);
    return total;
}

/* A child forked after the workers ran: its calls must complete (an alarm fails a hang), give
 * the parent's bits, and run on the calling thread (the child has as many threads after them as
 * before: none started). */
static void fork_after_threaded_call(void)
{
    set_context("fork after a threaded call");
    const int64_t rows = 2048, cols = 500;
    matrix z = matrix_new(F32, rows, cols, cols), parent = matrix_new(F32, rows, cols, cols);
    rng g = rng_new(case_seed(78, 1, 2, 3));
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) matrix_set(&z, r, c, rng_uniform(&g, -20, 20));
    check(nsm_set_num_threads(4) == NSM_OK, "nsm_set_num_threads(4) failed");
    check(call_softmax(F32, 0, rows, cols, matrix_data(&z), cols, matrix_data(&parent), cols) == NSM_OK, "parent softmax failed");
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        alarm(60);
        matrix mine = matrix_new(F32, rows, cols, cols);
        int threads_before = thread_total();
        int ok = 1;
        for (int round = 0; round < 3 && ok; ++round) {
            ok = call_softmax(F32, 0, rows, cols, matrix_data(&z), cols, matrix_data(&mine), cols) == NSM_OK &&
                 same_bits(&mine, &parent);
        }
        _exit(!ok ? 1 : thread_total() != threads_before ? 2 : 0);
    }
    int status = 0;
    check(child > 0 && waitpid(child, &status, 0) == child, "fork or waitpid failed");
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the forked child %s", WIFSIGNALED(status) ? (WTERMSIG(status) == SIGALRM ? "hung (60 s alarm)" : "died of a signal")
                                 : WEXITSTATUS(status) == 2 ? "started threads"
                                                            : "computed a different result");
    matrix_free(&z);
    matrix_free(&parent);
    nsm_set_num_threads(0);
}

/* Calls from many threads at once. The cases read per-item results once the workers are done: a
 * long row's chunk statistics (log_softmax; cross-entropy) and the blocks' loss totals
 * (cross-entropy over many blocks), which another caller's job must not overwrite before they
 * are read. Each call's output and loss must equal the one-thread result bit for bit. */
enum { CONCURRENT_CASES = 3, CONCURRENT_CALLERS = 6, CONCURRENT_ROUNDS = 40 };
static const int64_t k_concurrent_shapes[CONCURRENT_CASES][2] = {{1, 300007}, {3000, 37}, {1, 70001}};

typedef struct concurrent_case {
    float* logits;
    int64_t* labels;
    float* expected; /* the output, then (cross-entropy) the mean loss */
} concurrent_case;

static concurrent_case g_concurrent[CONCURRENT_CASES];

static nsm_status concurrent_compute(int k, float* out)
{
    int64_t rows = k_concurrent_shapes[k][0], cols = k_concurrent_shapes[k][1];
    if (k == 0) return nsm_log_softmax_f32(rows, cols, g_concurrent[k].logits, cols, out, cols);
    nsm_cross_entropy_options options = NSM_CROSS_ENTROPY_OPTIONS_INIT;
    return nsm_cross_entropy_f32(rows, cols, g_concurrent[k].logits, cols, g_concurrent[k].labels, NULL, &options,
                                 out + rows * cols, out, cols);
}

/* Returns how many of its calls failed or differed from one thread, or −1 without memory. */
static void* concurrent_caller(void* arg)
{
    intptr_t caller = (intptr_t)arg, differ = 0;
    float* out = malloc((300007 + 1) * sizeof(float));
    if (out == NULL) return (void*)(intptr_t)-1;
    for (int round = 0; round < CONCURRENT_ROUNDS; ++round) {
        int k = (int)((caller + round) % CONCURRENT_CASES);
        size_t n = (size_t)(k_concurrent_shapes[k][0] * k_concurrent_shapes[k][1]) + (k != 0);
        memset(out, 0xFF, n * sizeof(float)); /* NaN: a call that writes nothing cannot pass */
        differ += concurrent_compute(k, out) != NSM_OK || memcmp(out, g_concurrent[k].expected, n * sizeof(float)) != 0;
    }
    free(out);
    return (void*)differ;
}

static void concurrent_callers(void)
{
    set_context("calls from %d threads at once", CONCURRENT_CALLERS);
    rng g = rng_new(case_seed(79, 1, 2, 3));
    check(nsm_set_num_threads(1) == NSM_OK, "nsm_set_num_threads(1) failed");
    for (int k = 0; k < CONCURRENT_CASES; ++k) {
        int64_t rows = k_concurrent_shapes[k][0], cols = k_concurrent_shapes[k][1];
        g_concurrent[k].logits = malloc((size_t)(rows * cols) * sizeof(float));
        g_concurrent[k].labels = malloc((size_t)rows * sizeof(int64_t));
        g_concurrent[k].expected = malloc((size_t)(rows * cols + 1) * sizeof(float));
        for (int64_t i = 0; i < rows * cols; ++i) g_concurrent[k].logits[i] = (float)rng_uniform(&g, -20, 20);
        for (int64_t r = 0; r < rows; ++r) g_concurrent[k].labels[r] = (int64_t)rng_uniform(&g, 0, (double)cols) % cols;
        check(concurrent_compute(k, g_concurrent[k].expected) == NSM_OK, "case %d on one thread failed: %s", k,
              nsm_last_error());
    }
    check(nsm_set_num_threads(4) == NSM_OK, "nsm_set_num_threads(4) failed");
    pthread_t threads[CONCURRENT_CALLERS];
    int started = 0;
    while (started < CONCURRENT_CALLERS &&
           check(pthread_create(&threads[started], NULL, concurrent_caller, (void*)(intptr_t)started) == 0,
                 "pthread_create failed"))
        ++started;
    for (int i = 0; i < started; ++i) {
        void* differ = NULL;
        pthread_join(threads[i], &differ);
        check(differ == NULL, "caller %d: %ld of %d calls differ from one thread%s", i, (long)(intptr_t)differ,
              CONCURRENT_ROUNDS, (intptr_t)differ < 0 ? " (out of memory)" : "");
    }
    for (int k = 0; k < CONCURRENT_CASES; ++k) {
        free(g_concurrent[k].logits);
        free(g_concurrent[k].labels);
        free(g_concurrent[k].expected);
    }
    nsm_set_num_threads(0);
}

void group_threads(void)
{
    thread_count_setting();
    for (int dt = 0; dt < 2; ++dt) {
        dtype t = (dtype)dt;
        same_bits_at_every_thread_count(t, 3001, 10);   /* many blocks of short rows */
        same_bits_at_every_thread_count(t, 517, 999);   /* blocks of 16 rows */
        same_bits_at_every_thread_count(t, 3, 70001);   /* a few long rows (chunks of columns) */
        same_bits_at_every_thread_count(t, 1, 300007);  /* one long row split across threads */
    }
    fork_after_threaded_call();
    concurrent_callers();
    nsm_set_num_threads(0);
}
