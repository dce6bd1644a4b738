/* sigwaitinfo's rules against Linux: the waited set is blocked while it
 * waits (a handled, unblocked signal of the set is taken, the handler does
 * not run); a handled signal outside the set ends it with EINTR even under
 * SA_RESTART; a blocked signal is queued although ignored; an unblocked
 * ignored one is dropped; kill() to an unreaped zombie succeeds. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile int handled;
static void on_sig(int s) { handled = s; }

static pid_t signal_later(int sig) {
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) {
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
        kill(parent, sig);
        _exit(0);
    }
    return pid;
}

int main(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_sig;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pid_t child = signal_later(SIGUSR1);
    siginfo_t si;
    int r = sigwaitinfo(&set, &si);
    printf("unblocked handled signal of the set: %d handler %d code %d\n", r, handled,
           si.si_code);
    waitpid(child, NULL, 0);

    sigemptyset(&set);
    child = signal_later(SIGUSR2);
    struct timespec two = {2, 0};
    r = sigtimedwait(&set, &si, &two);
    printf("empty set, handled signal: %d %s handler %d\n", r, r < 0 ? strerrorname_np(errno) : "",
           handled);
    waitpid(child, NULL, 0);

    signal(SIGUSR2, SIG_IGN);
    sigset_t block, pending;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR2);
    sigprocmask(SIG_BLOCK, &block, NULL);
    kill(getpid(), SIGUSR2);
    sigpending(&pending);
    printf("blocked ignored signal pending: %d\n", sigismember(&pending, SIGUSR2));
    struct timespec zero = {0, 0};
    r = sigtimedwait(&block, &si, &zero);
    printf("taken by sigtimedwait: %d\n", r);
    sigprocmask(SIG_UNBLOCK, &block, NULL);
    kill(getpid(), SIGUSR2);
    sigpending(&pending);
    printf("unblocked ignored signal pending: %d\n", sigismember(&pending, SIGUSR2));

    pid_t z = fork();
    if (z == 0)
        _exit(7);
    siginfo_t wi;
    waitid(P_PID, z, &wi, WEXITED | WNOWAIT);
    printf("kill zombie: %s\n", kill(z, SIGTERM) == 0 ? "ok" : strerrorname_np(errno));
    int st;
    waitpid(z, &st, 0);
    printf("zombie status %d; kill reaped: %s\n", WEXITSTATUS(st),
           kill(z, SIGTERM) == 0 ? "ok" : strerrorname_np(errno));
    return 0;
}
