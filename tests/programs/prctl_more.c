/* prctl options beyond names and dumpable: the timer slack (per thread, the
 * clone child's default is its creator's slack, /proc/self/timerslack_ns),
 * PR_SET/GET_TIMING, PR_GET_TSC, THP-disable, no_new_privs' unused-argument
 * checks, and a child subreaper adopting an orphaned grandchild (getppid,
 * wait and SIGCHLD). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PR_SET_TIMERSLACK
#define PR_SET_TIMERSLACK 29
#define PR_GET_TIMERSLACK 30
#endif

static volatile sig_atomic_t chld;
static void on_chld(int s) { (void)s; chld++; }

static void show(const char *what, long r) {
    printf("%s = %ld errno %d\n", what, r, r < 0 ? errno : 0);
    errno = 0;
}

static long proc_slack(void) {
    FILE *f = fopen("/proc/self/timerslack_ns", "r");
    long v = -1;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -2;
        fclose(f);
    }
    return v;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    long initial = prctl(PR_GET_TIMERSLACK); /* the runner's: 50000 unless it set one */
    printf("initial slack > 0 %d\n", initial > 0);
    show("set slack 70000", prctl(PR_SET_TIMERSLACK, 70000));
    show("get slack", prctl(PR_GET_TIMERSLACK));
    show("proc slack", proc_slack());
    pid_t kid = fork();
    if (kid == 0) {
        show("child slack", prctl(PR_GET_TIMERSLACK));
        prctl(PR_SET_TIMERSLACK, 0);
        show("child default slack", prctl(PR_GET_TIMERSLACK));
        _exit(0);
    }
    waitpid(kid, NULL, 0);
    show("set slack 0", prctl(PR_SET_TIMERSLACK, 0));
    printf("reset to initial %d\n", prctl(PR_GET_TIMERSLACK) == initial);

    show("get timing", prctl(PR_GET_TIMING));
    show("set timing timestamp", prctl(PR_SET_TIMING, 1));
    show("set timing statistical", prctl(PR_SET_TIMING, 0));
    int tsc = 0;
    show("get tsc", prctl(PR_GET_TSC, &tsc));
    printf("tsc %d\n", tsc);
    show("set tsc enable", prctl(PR_SET_TSC, PR_TSC_ENABLE));
    show("thp get bad arg", prctl(PR_GET_THP_DISABLE, 1, 0, 0, 0));
    show("thp set bad arg", prctl(PR_SET_THP_DISABLE, 0, 1, 0, 0));
    show("thp set", prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0));
    show("thp get", prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
    show("nnp set 0", prctl(PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0));
    show("nnp set arg3", prctl(PR_SET_NO_NEW_PRIVS, 1, 1, 0, 0));
    show("nnp get arg2", prctl(PR_GET_NO_NEW_PRIVS, 1, 0, 0, 0));
    show("bad option", prctl(999, 1, 0, 0, 0));

    /* subreaper */
    signal(SIGCHLD, on_chld);
    show("set subreaper", prctl(PR_SET_CHILD_SUBREAPER, 1));
    int sub = -1;
    prctl(PR_GET_CHILD_SUBREAPER, &sub);
    printf("subreaper %d\n", sub);
    int p[2];
    if (pipe(p) != 0)
        return 1;
    pid_t me = getpid();
    kid = fork();
    if (kid == 0) {
        pid_t g = fork();
        if (g == 0) {
            char c;
            close(p[1]);
            if (read(p[0], &c, 1) != 0) /* EOF: our parent is gone */
                _exit(3);
            _exit(getppid() == me ? 7 : 8);
        }
        int s = -1;
        prctl(PR_GET_CHILD_SUBREAPER, &s);
        _exit(s == 0 ? 0 : 9);
    }
    close(p[0]);
    int st;
    waitpid(kid, &st, 0);
    printf("child exit %d\n", WEXITSTATUS(st));
    close(p[1]);
    pid_t got = wait(&st);
    printf("adopted grandchild reaped %d exit %d\n", got > 0 && got != kid, WEXITSTATUS(st));
    printf("sigchld twice %d\n", chld == 2);
    return 0;
}
