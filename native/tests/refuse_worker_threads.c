/*
 * refuse_worker_threads.c — an LD_PRELOAD library that plays a process at its thread limit for
 * the library's worker threads: pthread_create fails with EAGAIN (as at RLIMIT_NPROC or a
 * container's pids limit) for every thread that asks for the workers' 256 KiB stack, once
 * NSM_ALLOW_WORKERS of them (default 0) have started. Other threads (the caller's, the runtime's)
 * start as usual.
 *
 * A test that refused nothing would check nothing: at exit, a process that asked for no worker
 * ends with status 99 ("no worker thread was asked for") instead of its own.
 */
#define _GNU_SOURCE /* RTLD_NEXT */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define WORKER_STACK_BYTES (256 * 1024) /* WorkerPool's maxStackSize */

typedef int (*create_function)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);

static atomic_int s_started, s_refused;

int pthread_create(pthread_t* thread, const pthread_attr_t* attributes, void* (*start)(void*), void* argument)
{
    create_function real = (create_function)dlsym(RTLD_NEXT, "pthread_create");
    size_t stack = 0;
    if (attributes != NULL && pthread_attr_getstacksize(attributes, &stack) == 0 && stack == WORKER_STACK_BYTES) {
        const char* allow = getenv("NSM_ALLOW_WORKERS");
        if (atomic_fetch_add(&s_started, 1) >= (allow != NULL ? atoi(allow) : 0)) {
            atomic_fetch_add(&s_refused, 1);
            return EAGAIN;
        }
    }
    return real(thread, attributes, start, argument);
}

__attribute__((destructor)) static void report(void)
{
    fprintf(stderr, "refuse_worker_threads: %d worker threads asked for, %d refused\n",
            atomic_load(&s_started), atomic_load(&s_refused));
    if (atomic_load(&s_refused) == 0) {
        fprintf(stderr, "refuse_worker_threads: no worker thread was refused, so nothing was tested\n");
        fflush(NULL);
        _exit(99);
    }
}
