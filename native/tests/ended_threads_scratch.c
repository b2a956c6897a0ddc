/*
 * ended_threads_scratch.c — the memory that threads leave when they end stays bounded: 100
 * threads, one after another, each make one bfloat16 softmax of one row of 2^20 classes (a 4 MiB
 * float32 scratch kept by the thread) and end. The library frees what ended threads left once
 * the scratch of all threads would pass 64 MiB (the header's memory rule), so the process grows
 * by far less than the 400 MiB that 100 kept scratches would hold. Then a child forked from
 * it does the same with 20 threads: it has no finalizer thread to collect with, and must not
 * wait for one (an alarm fails a hang).
 *
 *   ended_threads_scratch    exits 0 when the resident memory grew by less than 160 MiB and the
 *                            forked child's calls all returned NSM_OK
 */
#define _GNU_SOURCE /* fork, alarm */
#include "nativesoftmax.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define COLS (1 << 20)
#define THREADS 100
#define CHILD_THREADS 20
#define LIMIT_KIB (160L * 1024)

static nsm_bfloat16 logits[COLS], probabilities[COLS];
static nsm_status statuses[THREADS];

static void* one_call(void* slot)
{
    *(nsm_status*)slot = nsm_softmax_bf16(1, COLS, logits, COLS, probabilities, COLS);
    return NULL;
}

/* The resident set of this process in KiB, or -1. */
static long resident_kib(void)
{
    FILE* statm = fopen("/proc/self/statm", "r");
    long pages = -1, resident = -1;
    if (statm != NULL) {
        if (fscanf(statm, "%ld %ld", &pages, &resident) != 2) resident = -1;
        fclose(statm);
    }
    long page = sysconf(_SC_PAGESIZE);
    return resident < 0 || page <= 0 ? -1 : resident * (page / 1024);
}

static int run_thread(int k)
{
    pthread_t thread;
    return pthread_create(&thread, NULL, one_call, &statuses[k]) == 0 && pthread_join(thread, NULL) == 0;
}

int main(void)
{
    for (int j = 0; j < COLS; j++) {
        logits[j].bits = (uint16_t)(0x3F80u + (uint32_t)(j % 97)); /* 1.0 and a little more */
    }
    if (nsm_set_num_threads(1) != NSM_OK) { /* each call's scratch on its own thread */
        fprintf(stderr, "FAIL: nsm_set_num_threads(1): %s\n", nsm_last_error());
        return 1;
    }
    if (!run_thread(0)) { /* the runtime and the first scratch, before the baseline */
        fprintf(stderr, "FAIL: cannot run a thread\n");
        return 1;
    }
    long before = resident_kib();
    for (int k = 1; k < THREADS; k++) {
        if (!run_thread(k)) {
            fprintf(stderr, "FAIL: cannot run a thread\n");
            return 1;
        }
    }
    long after = resident_kib();
    int failures = 0;
    for (int k = 0; k < THREADS; k++) {
        if (statuses[k] != NSM_OK) {
            fprintf(stderr, "FAIL: call %d: %s\n", k, nsm_status_string(statuses[k]));
            ++failures;
        }
    }
    if (before < 0 || after < 0) {
        printf("SKIP: /proc/self/statm cannot be read\n");
        return failures ? 1 : 77;
    }
    printf("%d threads, one 1 x %d bfloat16 softmax each (%s path): resident %ld -> %ld KiB\n", THREADS, COLS,
           nsm_isa(), before, after);
    if (after - before >= LIMIT_KIB) {
        fprintf(stderr, "FAIL: the process grew by %ld KiB (limit %ld): ended threads' scratch is kept\n",
                after - before, LIMIT_KIB);
        ++failures;
    }

    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        alarm(120);
        for (int k = 0; k < CHILD_THREADS; k++) {
            if (!run_thread(k) || statuses[k] != NSM_OK) _exit(1);
        }
        _exit(0);
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "FAIL: the forked child %s\n",
                WIFSIGNALED(status) ? (WTERMSIG(status) == SIGALRM ? "hung (120 s alarm)" : "died of a signal")
                                    : "could not run or a call failed");
        ++failures;
    }
    return failures ? 1 : 0;
}
