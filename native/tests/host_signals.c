/*
 * host_signals.c — the library's first call (which starts its runtime) leaves the host's SIGPIPE
 * disposition as the host set it: default, ignored, or a handler of its own. The runtime would
 * set it to ignored, and programs the host starts would inherit that. Of the other signals, the
 * first call changes the dispositions of SIGSEGV, SIGFPE and SIGRTMIN at most (the header's list).
 *
 *   host_signals    exits 0 when SIGPIPE is as each fresh process set it, after a first call,
 *                   and no signal outside the header's list changed
 */
#define _GNU_SOURCE /* sigaction, NSIG, SIGRTMIN */
#include "nativesoftmax.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void host_handler(int signal_number)
{
    (void)signal_number;
}

/* In a fresh child: SIGPIPE set to handler, one first call, and the disposition read back. */
static int kept(void (*handler)(int), const char* name)
{
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        struct sigaction set, after;
        memset(&set, 0, sizeof set);
        set.sa_handler = handler;
        float logits[2] = {1.0f, 2.0f}, probabilities[2];
        if (sigaction(SIGPIPE, &set, NULL) != 0) _exit(2);
        if (nsm_softmax_f32(1, 2, logits, 2, probabilities, 2) != NSM_OK) _exit(3);
        if (sigaction(SIGPIPE, NULL, &after) != 0) _exit(2);
        _exit(after.sa_handler == handler ? 0 : 1);
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "FAIL: SIGPIPE set to %s before the first call: %s\n", name,
                WIFEXITED(status) && WEXITSTATUS(status) == 1 ? "changed by it" : "the check could not run");
        return 1;
    }
    return 0;
}

/* In a fresh child: every disposition before and after a first call. */
static int others_kept(void)
{
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        static struct sigaction before[NSIG];
        for (int s = 1; s < NSIG; s++) sigaction(s, NULL, &before[s]);
        float logits[2] = {1.0f, 2.0f}, probabilities[2];
        if (nsm_softmax_f32(1, 2, logits, 2, probabilities, 2) != NSM_OK) _exit(2);
        int changed = 0;
        for (int s = 1; s < NSIG; s++) {
            struct sigaction after;
            if (sigaction(s, NULL, &after) != 0 || s == SIGSEGV || s == SIGFPE || s == SIGRTMIN) continue;
            if (after.sa_handler != before[s].sa_handler) {
                fprintf(stderr, "FAIL: the first call changed the disposition of signal %d\n", s);
                changed = 1;
            }
        }
        _exit(changed);
    }
    int status = 0;
    return child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}

int main(void)
{
    int failures = kept(SIG_DFL, "the default") + kept(SIG_IGN, "ignored") + kept(host_handler, "a handler") +
                   others_kept();
    printf("host_signals: %d failed\n", failures);
    return failures ? 1 : 0;
}
