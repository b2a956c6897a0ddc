/*
 * fork_during_calls.c — fork() while another thread is inside a call. The child gets only the
 * forking thread; the dispatcher's fork handler must have waited until no thread was inside the
 * library, or the child's runtime would wait for a thread that does not exist there at its first
 * garbage collection (the child aborts or hangs). The same holds for the library's own threads,
 * which must be asleep: a worker winds down for some microseconds after a call has returned.
 * Three parts, each child under an alarm:
 *
 *   1. During the process's first call: a fresh process (forked before any call) starts a thread
 *      whose call loads the library and starts its runtime, and forks after a delay of 0 µs to
 *      8 ms. The child makes a call and a failing one.
 *   2. During threaded calls: a thread repeats a two-thread softmax of 64 × 32000 while the main
 *      thread forks 8 times. Each child compares a call with the result computed before, makes
 *      300000 failing calls (each allocates its message, so the runtime collects), and calls
 *      again.
 *   3. Right after a threaded call, from the same thread: 40 fresh processes each make the
 *      two-thread softmax of 256 × 1000 that starts the worker, and fork at once. The child
 *      makes 300000 failing calls. (Without the wait for the library's threads, 2 to 9 of 40 such
 *      children aborted, depending on the load.)
 *
 *   fork_during_calls    exits 0 when every child exits 0 with the parent's bits
 */
#define _GNU_SOURCE /* usleep */
#include "nativesoftmax.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { ROWS = 64, COLS = 32000, FORKS = 8, FAILING_CALLS = 300000, FRESH_PROCESSES = 40 };

static float* logits;
static float* expected;
static volatile int stop;

/* Waits for a child; 0 when it exited 0, else a message on stderr and 1. */
static int child_failed(pid_t child, const char* what, int number)
{
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child) {
        fprintf(stderr, "FAIL: %s %d: fork or waitpid failed\n", what, number);
        return 1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    if (WIFSIGNALED(status))
        fprintf(stderr, "FAIL: %s %d: the child %s\n", what, number,
                WTERMSIG(status) == SIGALRM ? "hung (alarm)" : strsignal(WTERMSIG(status)));
    else
        fprintf(stderr, "FAIL: %s %d: the child's check %d failed\n", what, number, WEXITSTATUS(status));
    return 1;
}

static void* first_call(void* unused)
{
    (void)unused;
    static float in[40 * 100], out[40 * 100];
    nsm_softmax_f32(40, 100, in, 100, out, 100);
    return NULL;
}

/* Part 1, in a process that has made no call yet: fork while a thread makes the first one. */
static int fork_during_first_call(int delay_us)
{
    pthread_t thread;
    if (pthread_create(&thread, NULL, first_call, NULL) != 0) return 3;
    if (delay_us > 0) usleep((useconds_t)delay_us);
    pid_t child = fork();
    if (child == 0) {
        alarm(30);
        static float in[40 * 100], out[40 * 100];
        float bad;
        int ok = nsm_softmax_f32(40, 100, in, 100, out, 100) == NSM_OK &&
                 nsm_softmax_f32(1, 0, &bad, 1, &bad, 1) == NSM_ERR_INVALID_SHAPE;
        _exit(ok ? 0 : 1);
    }
    int failed = child_failed(child, "fork during the first call, delay (µs)", delay_us);
    pthread_join(thread, NULL);
    return failed;
}

/* Part 3, in a process that has made no call yet: the call that starts the worker, then fork. */
static int fork_right_after_threaded_call(void)
{
    enum { SHORT_ROWS = 256, SHORT_COLS = 1000 };
    static float in[SHORT_ROWS * SHORT_COLS], out[SHORT_ROWS * SHORT_COLS];
    for (int k = 0; k < SHORT_ROWS * SHORT_COLS; k++) in[k] = (float)(k % 101) * 0.1f;
    if (nsm_set_num_threads(2) != NSM_OK || nsm_softmax_f32(SHORT_ROWS, SHORT_COLS, in, SHORT_COLS, out, SHORT_COLS) != NSM_OK)
        return 2;
    pid_t child = fork();
    if (child == 0) {
        alarm(30);
        float bad;
        for (int i = 0; i < FAILING_CALLS; i++)
            if (nsm_softmax_f32(1, 0, &bad, 1, &bad, 1) != NSM_ERR_INVALID_SHAPE) _exit(4);
        _exit(0);
    }
    return child_failed(child, "fork right after a threaded call, process", 0);
}

static void* threaded_calls(void* unused)
{
    (void)unused;
    float* out = malloc((size_t)ROWS * COLS * sizeof *out);
    while (out != NULL && !stop) {
        if (nsm_softmax_f32(ROWS, COLS, logits, COLS, out, COLS) != NSM_OK ||
            memcmp(out, expected, (size_t)ROWS * COLS * sizeof *out) != 0) {
            fprintf(stderr, "FAIL: the parent's threaded call\n");
            exit(1);
        }
    }
    free(out);
    return NULL;
}

static int check_in_child(void)
{
    alarm(60);
    float* out = malloc((size_t)ROWS * COLS * sizeof *out);
    float bad;
    if (out == NULL) return 2;
    if (nsm_softmax_f32(ROWS, COLS, logits, COLS, out, COLS) != NSM_OK ||
        memcmp(out, expected, (size_t)ROWS * COLS * sizeof *out) != 0)
        return 3;
    for (int i = 0; i < FAILING_CALLS; i++)
        if (nsm_softmax_f32(1, 0, &bad, 1, &bad, 1) != NSM_ERR_INVALID_SHAPE) return 4;
    memset(out, 0, (size_t)ROWS * COLS * sizeof *out);
    if (nsm_softmax_f32(ROWS, COLS, logits, COLS, out, COLS) != NSM_OK ||
        memcmp(out, expected, (size_t)ROWS * COLS * sizeof *out) != 0)
        return 5;
    return 0;
}

int main(void)
{
    int failures = 0;
    static const int delays_us[] = {0, 50, 200, 1000, 2000, 4000, 8000};
    for (size_t i = 0; i < sizeof delays_us / sizeof delays_us[0]; i++) {
        fflush(NULL);
        pid_t fresh = fork(); /* a process that has not called the library yet */
        if (fresh == 0) _exit(fork_during_first_call(delays_us[i]));
        failures += child_failed(fresh, "a process for the first-call case, delay (µs)", delays_us[i]);
    }

    for (int i = 0; i < FRESH_PROCESSES; i++) {
        fflush(NULL);
        pid_t fresh = fork(); /* a process that has not called the library yet */
        if (fresh == 0) _exit(fork_right_after_threaded_call());
        failures += child_failed(fresh, "a process for the right-after case, number", i);
    }

    logits = malloc((size_t)ROWS * COLS * sizeof *logits);
    expected = malloc((size_t)ROWS * COLS * sizeof *expected);
    if (logits == NULL || expected == NULL) return 1;
    for (long k = 0; k < (long)ROWS * COLS; k++) logits[k] = (float)((k * 7919) % 4001) * 0.005f - 10.0f;
    if (nsm_set_num_threads(1) != NSM_OK || nsm_softmax_f32(ROWS, COLS, logits, COLS, expected, COLS) != NSM_OK ||
        nsm_set_num_threads(2) != NSM_OK) {
        fprintf(stderr, "FAIL: the one-thread call: %s\n", nsm_last_error());
        return 1;
    }
    pthread_t thread;
    if (pthread_create(&thread, NULL, threaded_calls, NULL) != 0) return 1;
    srand(20261201);
    for (int k = 0; k < FORKS; k++) {
        usleep((useconds_t)(500 + rand() % 5000));
        fflush(NULL);
        pid_t child = fork();
        if (child == 0) _exit(check_in_child());
        failures += child_failed(child, "fork during threaded calls", k);
    }
    stop = 1;
    pthread_join(thread, NULL);
    printf("fork_during_calls (%s path): %d failed\n", nsm_isa(), failures);
    return failures ? 1 : 0;
}
