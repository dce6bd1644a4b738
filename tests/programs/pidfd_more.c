/* pidfd_send_signal on a /proc/<pid> directory descriptor (Linux accepts
 * those as pidfds; any other file is EBADF), and waitid(P_PIDFD) on a
 * PIDFD_NONBLOCK pidfd: EAGAIN while the child runs (0 with WNOHANG), the
 * child's status once it has exited. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static volatile sig_atomic_t got;
static void on_usr1(int s) { (void)s; got++; }

static void show(const char *what, long r) {
    printf("%s = %ld errno %d\n", what, r, r < 0 ? errno : 0);
    errno = 0;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGUSR1, on_usr1);
    int dir = open("/proc/self", O_DIRECTORY | O_CLOEXEC);
    show("signal via /proc/self", syscall(SYS_pidfd_send_signal, dir, SIGUSR1, NULL, 0));
    printf("handled %d\n", got);
    int file = open("/proc/self/status", O_RDONLY);
    show("signal via a file", syscall(SYS_pidfd_send_signal, file, SIGUSR1, NULL, 0));
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    si.si_signo = SIGUSR2;
    show("siginfo signo mismatch", syscall(SYS_pidfd_send_signal, dir, SIGUSR1, &si, 0));

    int p[2];
    if (pipe(p) != 0)
        return 1;
    pid_t kid = fork();
    if (kid == 0) {
        char c;
        close(p[1]);
        _exit(read(p[0], &c, 1) == 0 ? 5 : 6);
    }
    close(p[0]);
    int fd = syscall(SYS_pidfd_open, kid, PIDFD_NONBLOCK);
    printf("nonblock flag %d\n", (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    memset(&si, 0, sizeof(si));
    show("waitid running", syscall(SYS_waitid, P_PIDFD, fd, &si, WEXITED, NULL));
    show("waitid running WNOHANG", syscall(SYS_waitid, P_PIDFD, fd, &si, WEXITED | WNOHANG, NULL));
    printf("no pid yet %d\n", si.si_pid == 0);
    close(p[1]);
    int blocking = syscall(SYS_pidfd_open, kid, 0);
    show("waitid blocking", syscall(SYS_waitid, P_PIDFD, blocking, &si, WEXITED | WNOWAIT, NULL));
    show("waitid exited", syscall(SYS_waitid, P_PIDFD, fd, &si, WEXITED, NULL));
    printf("status %d code %d\n", si.si_status, si.si_code);
    return 0;
}
