/* waitid(P_PID) and waitpid on one child while another child is an unreaped
 * zombie.  The second child execs this program again before exiting (as
 * CPython's test_posix.test_waitid does): the zombie must neither satisfy the
 * wait nor keep the waiter from sleeping.  Prints what each wait returned. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t spawn(const char *self, const char *code) {
    pid_t pid = fork();
    if (pid == 0) {
        execl(self, self, "child", code, (char *)NULL);
        _exit(127);
    }
    return pid;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "child") == 0)
        return atoi(argv[2]);
    setvbuf(stdout, NULL, _IONBF, 0);
    pid_t zombie = fork();
    if (zombie == 0)
        _exit(3);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    /* WNOWAIT: wait until it is a zombie, but leave it unreaped. */
    if (waitid(P_PID, zombie, &si, WEXITED | WNOWAIT) != 0) {
        perror("waitid WNOWAIT");
        return 1;
    }
    printf("zombie: code=%d status=%d same_pid=%d\n", si.si_code, si.si_status,
           si.si_pid == zombie);

    pid_t b = spawn(argv[0], "5");
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, b, &si, WEXITED) != 0) {
        perror("waitid");
        return 1;
    }
    printf("waitid: code=%d status=%d same_pid=%d\n", si.si_code, si.si_status, si.si_pid == b);

    pid_t c = spawn(argv[0], "6");
    int status = 0;
    pid_t got = waitpid(c, &status, 0);
    printf("waitpid: same_pid=%d exited=%d status=%d\n", got == c, WIFEXITED(status),
           WEXITSTATUS(status));

    /* WNOHANG on a running/absent match: nothing ready, not the zombie. */
    pid_t d = fork();
    if (d == 0) {
        pause();
        _exit(0);
    }
    memset(&si, 0, sizeof si);
    int r = waitid(P_PID, d, &si, WEXITED | WNOHANG);
    printf("nohang: r=%d si_pid=%d\n", r, si.si_pid);
    kill(d, SIGKILL);
    waitpid(d, &status, 0);
    printf("killed: signaled=%d sig=%d\n", WIFSIGNALED(status), WTERMSIG(status));

    got = waitpid(zombie, &status, 0);
    printf("reaped zombie: same_pid=%d status=%d\n", got == zombie, WEXITSTATUS(status));
    errno = 0;
    got = waitpid(-1, &status, WNOHANG);
    printf("no children: r=%d errno=%s\n", (int)got, strerror(errno));
    return 0;
}
