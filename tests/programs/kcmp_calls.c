/* kcmp(2) between a process, its threads and a forked child, for each kind
 * of object; and epoll_pwait2(2)'s timeout forms. The order kcmp gives is
 * randomised per boot, so results print as "same" or "differs". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void show(const char *what, long r) {
    if (r < 0)
        printf("%s: %s\n", what, strerrorname_np(errno));
    else
        printf("%s: %s\n", what, r == 0 ? "same" : (r == 1 || r == 2) ? "differs" : "?");
    fflush(stdout);
}

static long kcmp(pid_t a, pid_t b, int type, unsigned long i1, unsigned long i2) {
    return syscall(SYS_kcmp, a, b, type, i1, i2);
}

static pid_t thread_tid;
static int thread_go[2];

static void *thread_main(void *arg) {
    (void)arg;
    thread_tid = (pid_t)syscall(SYS_gettid);
    char c = 1;
    if (write(thread_go[1], &c, 1) != 1)
        return NULL;
    pause();
    return NULL;
}

int main(void) {
    pid_t me = getpid();
    int a = open("/proc/self/status", O_RDONLY);
    int b = dup(a);
    int c = open("/proc/self/status", O_RDONLY);
    show("file dup", kcmp(me, me, KCMP_FILE, a, b));
    show("file reopened", kcmp(me, me, KCMP_FILE, a, c));
    show("file bad fd", kcmp(me, me, KCMP_FILE, a, 999));
    show("bad type", kcmp(me, me, 99, 0, 0));
    show("no such pid", kcmp(me, 99999999, KCMP_VM, 0, 0));

    if (pipe(thread_go))
        return 2;
    pthread_t th;
    pthread_create(&th, NULL, thread_main, NULL);
    char ch;
    if (read(thread_go[0], &ch, 1) != 1)
        return 2;
    show("thread vm", kcmp(me, thread_tid, KCMP_VM, 0, 0));
    show("thread files", kcmp(me, thread_tid, KCMP_FILES, 0, 0));
    show("thread fs", kcmp(me, thread_tid, KCMP_FS, 0, 0));
    show("thread sighand", kcmp(me, thread_tid, KCMP_SIGHAND, 0, 0));
    show("thread sysvsem", kcmp(me, thread_tid, KCMP_SYSVSEM, 0, 0));

    int go[2];
    if (pipe(go))
        return 2;
    pid_t child = fork();
    if (child == 0) {
        char x;
        if (read(go[0], &x, 1) != 1)
            _exit(1);
        _exit(0);
    }
    show("child vm", kcmp(me, child, KCMP_VM, 0, 0));
    show("child files", kcmp(me, child, KCMP_FILES, 0, 0));
    show("child fs", kcmp(me, child, KCMP_FS, 0, 0));
    show("child sighand", kcmp(me, child, KCMP_SIGHAND, 0, 0));
    show("child sysvsem", kcmp(me, child, KCMP_SYSVSEM, 0, 0));
    show("child inherited file", kcmp(me, child, KCMP_FILE, a, a));

    int ep = epoll_create1(0);
    int q[2];
    if (pipe(q))
        return 2;
    int q0dup = dup(q[0]);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = q[0]};
    show("epoll_ctl procfs file", epoll_ctl(ep, EPOLL_CTL_ADD, a, &ev));
    show("epoll_ctl pipe", epoll_ctl(ep, EPOLL_CTL_ADD, q[0], &ev));
    struct kcmp_epoll_slot slot = {(uint32_t)ep, (uint32_t)q[0], 0};
    show("epoll target", kcmp(me, me, KCMP_EPOLL_TFD, q0dup, (unsigned long)&slot));
    show("epoll target other file", kcmp(me, me, KCMP_EPOLL_TFD, q[1], (unsigned long)&slot));
    slot.toff = 1;
    show("epoll target offset 1", kcmp(me, me, KCMP_EPOLL_TFD, q0dup, (unsigned long)&slot));
    slot.toff = 0;
    slot.tfd = (uint32_t)c;
    show("epoll unregistered", kcmp(me, me, KCMP_EPOLL_TFD, a, (unsigned long)&slot));
    slot.efd = (uint32_t)a;
    show("epoll not epoll", kcmp(me, me, KCMP_EPOLL_TFD, a, (unsigned long)&slot));

    pid_t weak = fork();
    if (weak == 0) {
        if (setgid(65534) || setuid(65534))
            _exit(3);
        show("unprivileged on root", kcmp(getpid(), me, KCMP_VM, 0, 0));
        _exit(0);
    }
    waitpid(weak, NULL, 0);

    struct epoll_event out[4];
    struct timespec zero = {0, 0}, neg = {-1, 0}, bad = {0, 1000000000};
    printf("pwait2 zero: %ld\n", syscall(SYS_epoll_pwait2, ep, out, 4, &zero, NULL, 8));
    long r = syscall(SYS_epoll_pwait2, ep, out, 4, &neg, NULL, 8);
    printf("pwait2 negative: %s\n", r < 0 ? strerrorname_np(errno) : "ok");
    r = syscall(SYS_epoll_pwait2, ep, out, 4, &bad, NULL, 8);
    printf("pwait2 bad nsec: %s\n", r < 0 ? strerrorname_np(errno) : "ok");
    r = syscall(SYS_epoll_pwait2, ep, out, 4, (void *)8, NULL, 8);
    printf("pwait2 bad pointer: %s\n", r < 0 ? strerrorname_np(errno) : "ok");
    int p[2];
    if (pipe(p) || write(p[1], "x", 1) != 1)
        return 2;
    struct epoll_event pev = {.events = EPOLLIN, .data.fd = p[0]};
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &pev);
    r = syscall(SYS_epoll_pwait2, ep, out, 4, NULL, NULL, 8);
    printf("pwait2 null timeout, ready: %ld\n", r);
    r = syscall(SYS_epoll_pwait2, ep, out, 0, &zero, NULL, 8);
    printf("pwait2 maxevents 0: %s\n", r < 0 ? strerrorname_np(errno) : "ok");

    if (write(go[1], "x", 1) != 1)
        return 2;
    int status;
    waitpid(child, &status, 0);
    printf("child: %d\n", WEXITSTATUS(status));
    return 0;
}
