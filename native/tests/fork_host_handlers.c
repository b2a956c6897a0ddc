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
 *   3. A thread inside a long call gets a signal whose handler forks, while the main thread forks
 *      too: the main thread's fork waits for that call, so the handler's fork must not wait for
 *      the main thread's; and in the handler's child, where the main thread's fork is gone, a
 *      call after the long one (made on one thread, so that the child can finish it) must not
 *      wait for it.
 *   4. dlclose() of the dispatcher, then a thread that had called ends: no destructor of the
 *      unloaded file may run.
 *   5. In a fresh process, a host prepare handler registered before the library touches a page
 *      that its own SIGSEGV handler unprotects: the library's handler must not block signals
 *      across the host's.
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
#include <sys/mman.h>
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

/* Forks a child that exits at once; whether it exited 0. */
static int fork_and_wait(void)
{
    pid_t child = fork();
    if (child == 0) _exit(0);
    return child_ok(child);
}

static void fork_in_handler(int signal_number)
{
    (void)signal_number;
    pid_t child = fork();
    if (child == 0) _exit(0);
    forked_in_handler = child;
}

/* Part 3: the long call's thread, and its signal handler, which forks while the call is under way. */
static volatile int in_long_call, in_usr1_handler, usr1_fork_ok, in_handlers_child;

/* Whether the child exits 0 within 20 s; killed and 0 otherwise (a wait in the library may have
 * every signal blocked, so the child's own alarm would not end it). */
static int child_ok_within_20_s(pid_t child)
{
    for (int tenth = 0; child > 0 && tenth < 200; tenth++) {
        int status = 0;
        pid_t done = waitpid(child, &status, WNOHANG);
        if (done == child) return WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (done < 0) return 0;
        usleep(100000);
    }
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    return 0;
}

/* The child of this fork returns from the handler, finishes the long call and makes another,
 * which must not wait for the main thread's fork (under way in the parent, gone here). */
static void fork_in_usr1_handler(int signal_number)
{
    (void)signal_number;
    in_usr1_handler = 1;
    usleep(50000); /* the main thread forks meanwhile, and waits for this thread's call */
    pid_t child = fork();
    if (child == 0) {
        in_handlers_child = 1;
        return;
    }
    usr1_fork_ok = child_ok_within_20_s(child);
}

static void* one_long_call(void* unused)
{
    (void)unused;
    enum { ROWS = 512 };
    float* in = calloc((size_t)ROWS * LONG_COLS, sizeof *in);
    float* out = malloc((size_t)ROWS * LONG_COLS * sizeof *out);
    if (in != NULL && out != NULL) {
        in_long_call = 1;
        softmax_f32(ROWS, LONG_COLS, in, LONG_COLS, out, LONG_COLS);
        if (in_handlers_child) _exit(softmax_f32(1, 10, in, 10, out, 10) == 0 ? 0 : 1);
    }
    in_long_call = 2;
    free(in);
    free(out);
    return NULL;
}

/* Part 5, in a fresh process: the page the host's prepare handler touches, and its SIGSEGV handler. */
static char* guarded_page;

static void unprotect_page(int signal_number, siginfo_t* info, void* context)
{
    (void)signal_number, (void)info, (void)context;
    mprotect(guarded_page, 4096, PROT_READ | PROT_WRITE);
}

static void touch_guarded_page(void)
{
    guarded_page[0] = 1;
}

static int host_handler_takes_a_signal(const char* library_path)
{
    guarded_page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct sigaction action = {0};
    action.sa_sigaction = unprotect_page;
    action.sa_flags = SA_SIGINFO;
    if (guarded_page == MAP_FAILED || sigaction(SIGSEGV, &action, NULL) != 0) return 2;
    pthread_atfork(touch_guarded_page, NULL, NULL); /* before the library's own */
    if (dlopen(library_path, RTLD_NOW | RTLD_LOCAL) == NULL) return 2;
    return fork_and_wait() ? 0 : 1;
}

int main(int argc, char** argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s LIBRARY\n", argv[0]);
        return 2;
    }
    alarm(240);
    fflush(NULL);
    pid_t fresh = fork(); /* part 5: a process that has not loaded the library */
    if (fresh == 0) _exit(host_handler_takes_a_signal(argv[1]));
    int part5_failed = !child_ok(fresh);
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
        if (!fork_and_wait()) ++failures;
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

    /* Part 3: the main thread forks while the long call's thread forks from a signal handler. One
     * thread: the handler's child finishes that call alone (a worker inside it would be gone). */
    int32_t (*set_num_threads)(int32_t) = (int32_t (*)(int32_t))dlsym(library, "nsm_set_num_threads");
    if (set_num_threads == NULL || set_num_threads(1) != 0) return 1;
    signal(SIGUSR1, fork_in_usr1_handler);
    pthread_t long_call;
    if (pthread_create(&long_call, NULL, one_long_call, NULL) != 0) return 1;
    while (in_long_call == 0) usleep(100);
    usleep(5000);
    if (in_long_call == 1) {
        pthread_kill(long_call, SIGUSR1);
        while (!in_usr1_handler) usleep(100);
        usleep(10000);
        if (!fork_and_wait()) ++failures;
    }
    pthread_join(long_call, NULL);
    if (in_usr1_handler && !usr1_fork_ok) {
        fprintf(stderr, "FAIL: part 3: the signal handler's child failed or hung in its next call\n");
        ++failures;
    }

    /* Part 4: unloaded, then the thread that called ends (a crash would end this process). */
    dlclose(library);
    may_end = 1;
    pthread_join(locked_caller, NULL);

    if (part5_failed) {
        fprintf(stderr, "FAIL: part 5: the host's prepare handler could not take its SIGSEGV\n");
        ++failures;
    }
    printf("fork_host_handlers: %d failed (part 3 %s)\n", failures,
           in_usr1_handler ? "ran" : "missed the call: the signal came after it");
    return failures ? 1 : 0;
}
