/* pidfds: open (its errors), poll before and after the process exits and is
 * reaped, pidfd_send_signal (with and without a siginfo; after death),
 * pidfd_getfd of a child's pipe. The same natively and in the sandbox. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *what, long ret) {
    printf("%s: %ld %s\n", what, ret, ret < 0 ? strerrorname_np(errno) : "-");
    fflush(stdout);
}

static int pidfd_open(pid_t pid, unsigned flags) { return syscall(SYS_pidfd_open, pid, flags); }

static short revents(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    poll(&p, 1, 0);
    return p.revents;
}

static void *sleeper(void *arg) {
    pid_t *tid = arg;
    *tid = gettid();
    pause();
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int ready[2];
    if (pipe(ready) != 0)
        return 1;
    pid_t child = fork();
    if (child == 0) {
        int p[2];
        if (pipe(p) != 0)
            _exit(1);
        dup2(p[0], 100);
        dup2(p[1], 101);
        if (write(ready[1], "r", 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    char c;
    if (read(ready[0], &c, 1) != 1)
        return 1;
    report("open bad flags", pidfd_open(child, 0x1));
    report("open pid 0", pidfd_open(0, 0));
    report("open no such pid", pidfd_open(999999, 0));
    pid_t tid = 0;
    pthread_t th;
    pthread_create(&th, NULL, sleeper, &tid);
    while (!__atomic_load_n(&tid, __ATOMIC_SEQ_CST))
        sched_yield();
    report("open a thread", pidfd_open(tid, 0));
    int fd = pidfd_open(child, 0);
    report("open child", fd >= 0);
    report("cloexec", fcntl(fd, F_GETFD));
    printf("poll alive %d\n", revents(fd));
    int r = syscall(SYS_pidfd_getfd, fd, 100, 0), w = syscall(SYS_pidfd_getfd, fd, 101, 0);
    report("getfd read end", r >= 0);
    report("getfd bad fd", syscall(SYS_pidfd_getfd, fd, 55, 0));
    report("getfd bad flags", syscall(SYS_pidfd_getfd, fd, 100, 1));
    if (write(w, "x", 1) == 1 && read(r, &c, 1) == 1)
        printf("through the child's pipe: %c\n", c);
    report("send bad flags", syscall(SYS_pidfd_send_signal, fd, SIGTERM, NULL, 8));
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = SIGUSR1;
    si.si_code = SI_USER;
    report("send info with si_code >= 0", syscall(SYS_pidfd_send_signal, fd, SIGUSR1, &si, 0));
    si.si_code = SI_QUEUE;
    report("send info, wrong signo", syscall(SYS_pidfd_send_signal, fd, SIGTERM, &si, 0));
    report("send on a pipe", syscall(SYS_pidfd_send_signal, r, SIGTERM, NULL, 0));
    report("send TERM", syscall(SYS_pidfd_send_signal, fd, SIGTERM, NULL, 0));
    for (int i = 0; i < 10000000 && !(revents(fd) & POLLIN); i++)
        sched_yield();
    printf("poll exited %d\n", revents(fd));
    report("send to the zombie", syscall(SYS_pidfd_send_signal, fd, SIGTERM, NULL, 0));
    int st;
    waitpid(child, &st, 0);
    printf("killed by %d\n", WTERMSIG(st));
    printf("poll reaped %d\n", revents(fd));
    report("send after reap", syscall(SYS_pidfd_send_signal, fd, SIGTERM, NULL, 0));
    report("open reaped pid", pidfd_open(child, 0));
    report("self", syscall(SYS_pidfd_send_signal, pidfd_open(getpid(), 0), 0, NULL, 0));
    return 0;
}
