/* A signal whose default action is to ignore it (SIGCHLD, SIGURG) is queued,
 * not dropped, while it is blocked, so sigtimedwait and sigpending find it:
 * Linux never ignores a blocked signal (its handler may change before it is
 * unblocked).  Trinity's watchdog waits for its children this way; in the
 * sandbox it waited forever. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGURG);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGCHLD, SIG_DFL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(5);
    struct timespec ts = {5, 0};
    siginfo_t si;
    int got = sigtimedwait(&set, &si, &ts);
    printf("sigtimedwait: %s", got < 0 ? strerror(errno) : strsignal(got));
    if (got == SIGCHLD)
        printf(" from the child: %s, status %d", si.si_pid == pid ? "yes" : "no", si.si_status);
    printf("\n");
    int st;
    waitpid(pid, &st, 0);
    /* The default-ignored SIGURG, blocked, sent to ourselves: queued as well. */
    kill(getpid(), SIGURG);
    sigset_t pend;
    sigpending(&pend);
    printf("SIGURG pending while blocked: %s\n", sigismember(&pend, SIGURG) ? "yes" : "no");
    return 0;
}
