/* Fork churn for the Sentry's descriptor count (tests/test_isolation.py):
 * each address space's memory is a file of its own in the Sentry, and none
 * may outlive its process.  Steps, each announced on stdout and held until a
 * byte arrives on stdin:
 *   "ready"      one fork done and reaped (the first moves the program's
 *                read-only pages into a shared object of their own, which
 *                stays: sentry/mm/address_space.py, fork)
 *   "child up"   one child alive (its memory file open in the Sentry)
 *   "done"       that child reaped, then N forks (argv[1]) each exited and reaped */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void step(const char *what) {
    char c;
    printf("%s\n", what);
    fflush(stdout);
    if (read(0, &c, 1) != 1)
        exit(3);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    int p[2];
    if (pipe(p) != 0)
        return 1;
    pid_t first = fork();
    if (first < 0)
        return 1;
    if (first == 0)
        _exit(0);
    if (waitpid(first, NULL, 0) != first)
        return 1;
    step("ready");
    pid_t held = fork();
    if (held < 0)
        return 1;
    if (held == 0) {
        char c;
        close(p[1]);
        _exit(read(p[0], &c, 1) == 0 ? 0 : 4);
    }
    close(p[0]);
    step("child up");
    close(p[1]);
    if (waitpid(held, NULL, 0) != held)
        return 1;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0)
            return 1;
        if (pid == 0)
            _exit(0);
        if (waitpid(pid, NULL, 0) != pid)
            return 1;
    }
    step("done");
    return 0;
}
