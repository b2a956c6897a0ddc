/*
 * fork_host_handlers.c — the dispatcher's fork handler among a host's own, with the dispatcher
 * loaded by dlopen() (its path is the argument), after the host registered a handler:
 *
 *   1. A host lock L, taken by the host's own pthread_atfork prepare handler (registered before
 *      the library was loaded, so it runs after the library's), is held by a thread around a
 *      small call, while another thread makes long calls and the main thread forks 50 times.
 *      A call that waited for the fork for ever, holding L, would deadlock the fork (an alarm
 *      fails it).
 *   2. A SIGALRM handler forks while its own thread is inside a call: the fork must not wait
 *      for that call, which cannot end before the handler returns.
 *   3. dlclose() of the dispatcher, then a thread that had called ends: no destructor of the
 *      unloaded file may run.
 *
 *   fork_host_handlers LIBRARY    exits 0 when every part completes, each child exiting 0
 */
#define _GNU_SOURCE /* RTLD_*, usleep */
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

typedef int32_t (*softmax_function)(int64_t, int64_t, const float*, int64_t, float*, int64_t);

enum { LONG_ROWS = 64, LONG_COLS = 32000, FORKS = 50 };

static softmax_function softmax_f32;
static pthread_mutex_t host_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile int stop, may_end;
static volatile pid_t forked_in_handler = -1;

static void lock_host(void) { pthread_mutex_lock(&host_lock); }
static void unlock_host(void) { pthread_mutex_unlock(&host_lock); }

static void* long_calls(void* unused)
{
    (void)unused;
    float* in = calloc((size_t)LONG_ROWS * LONG_COLS, sizeof *in);
    float* out = malloc((size_t)LONG_ROWS * LONG_COLS * sizeof *out);
    while (in != NULL && out != NULL && !stop) softmax_f32(LONG_ROWS, LONG_COLS, in, LONG_COLS, out, LONG_COLS);
    free(in);
    free(out);
    return NULL;
}

static void* calls_under_host_lock(void* unused)
{
    (void)unused;
    float in[10] = {0}, out[10];
    while (!stop) {
        pthread_mutex_lock(&host_lock);
        softmax_f32(1, 10, in, 10, out, 10);
        pthread_mutex_unlock(&host_lock);
    }
    while (!may_end) usleep(1000); /* part 3: it ends after the dispatcher is unloaded */
    return NULL;
}

static int child_ok(pid_t child)
{
    int status = 0;
    return child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void fork_in_handler(int signal_number)
{
    (void)signal_number;
    pid_t child = fork();
    if (child == 0) _exit(0);
    forked_in_handler = child;
}

int main(int argc, char** argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s LIBRARY\n", argv[0]);
        return 2;
    }
    alarm(240);
    pthread_atfork(lock_host, unlock_host, unlock_host); /* before the library's own */
    void* library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    softmax_f32 = library != NULL ? (softmax_function)dlsym(library, "nsm_softmax_f32") : NULL;
    if (softmax_f32 == NULL) {
        fprintf(stderr, "FAIL: cannot load %s: %s\n", argv[1], dlerror());
        return 1;
    }
    int failures = 0;

    pthread_t long_caller, locked_caller;
    if (pthread_create(&long_caller, NULL, long_calls, NULL) != 0 ||
        pthread_create(&locked_caller, NULL, calls_under_host_lock, NULL) != 0)
        return 1;
    for (int k = 0; k < FORKS; k++) {
        usleep(2000);
        pid_t child = fork();
        if (child == 0) _exit(0);
        if (!child_ok(child)) ++failures;
    }
    stop = 1;
    pthread_join(long_caller, NULL);
    if (failures) fprintf(stderr, "FAIL: part 1: %d children failed\n", failures);

    /* Part 2: a 2 ms timer fires during a call of about 10 ms on this very thread. */
    float* in = calloc((size_t)8 * LONG_ROWS * LONG_COLS, sizeof *in);
    float* out = malloc((size_t)8 * LONG_ROWS * LONG_COLS * sizeof *out);
    struct sigaction action = {0};
    action.sa_handler = fork_in_handler;
    action.sa_flags = SA_RESTART;
    struct itimerval timer = {{0, 0}, {0, 2000}};
    if (in == NULL || out == NULL || sigaction(SIGALRM, &action, NULL) != 0) return 1;
    setitimer(ITIMER_REAL, &timer, NULL);
    for (int k = 0; k < 5; k++) softmax_f32(8 * LONG_ROWS, LONG_COLS, in, LONG_COLS, out, LONG_COLS);
    if (forked_in_handler <= 0 || !child_ok(forked_in_handler)) {
        fprintf(stderr, "FAIL: part 2: the fork in the signal handler %s\n",
                forked_in_handler <= 0 ? "did not happen during the calls" : "gave a failing child");
        ++failures;
    }
    signal(SIGALRM, SIG_DFL);
    alarm(60);

    /* Part 3: unloaded, then the thread that called ends (a crash would end this process). */
    dlclose(library);
    may_end = 1;
    pthread_join(locked_caller, NULL);

    printf("fork_host_handlers: %d failed\n", failures);
    return failures ? 1 : 0;
}
