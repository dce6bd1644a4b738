/* timerfd and signalfd: creation errors, one-shot and interval timers
 * (expirations counted, however late the read), gettime, disarm, O_NONBLOCK,
 * absolute timers; signalfd reads of blocked signals with their siginfo,
 * mask updates, a signal from a child, and both descriptors in poll and
 * epoll. Every result with its errno; the same natively and in the sandbox.
 * Timing-dependent values are printed as comparisons, never raw. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void report(const char *what, long ret) {
    printf("%s: %ld %s\n", what, ret, ret < 0 ? strerrorname_np(errno) : "-");
    fflush(stdout);
}

static long ms_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

static void timers(void) {
    report("bad clock", timerfd_create(42, 0));
    report("bad flags", timerfd_create(CLOCK_MONOTONIC, 0x10));
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    report("create", fd >= 0);
    uint64_t n = 0;
    struct itimerspec its = {.it_value = {0, 30000000}}, cur;
    report("settime bad nsec", timerfd_settime(fd, 0,
           &(struct itimerspec){.it_value = {0, 1000000000}}, NULL));
    report("settime bad flags", timerfd_settime(fd, 8, &its, NULL));
    report("settime on a pipe", timerfd_settime(0, 0, &its, NULL));
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    report("arm 30 ms one-shot", timerfd_settime(fd, 0, &its, NULL));
    timerfd_gettime(fd, &cur);
    printf("remaining in (0, 30 ms]: %d\n", cur.it_value.tv_sec == 0 &&
           cur.it_value.tv_nsec > 0 && cur.it_value.tv_nsec <= 30000000);
    report("read", read(fd, &n, 8));
    printf("expirations %lu, waited >= 25 ms: %d\n", (unsigned long)n, ms_since(&t0) >= 25);
    timerfd_gettime(fd, &cur);
    printf("disarmed after one-shot: %d\n", cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);
    report("short read", read(fd, &n, 4));
    int nb = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    report("nonblock read unarmed", read(nb, &n, 8));
    struct itimerspec every = {.it_value = {0, 10000000}, .it_interval = {0, 10000000}};
    timerfd_settime(nb, 0, &every, NULL);
    struct timespec nap = {0, 55000000};
    nanosleep(&nap, NULL);
    report("interval read", read(nb, &n, 8));
    printf("at least 4 expirations: %d\n", n >= 4);
    struct itimerspec old;
    report("disarm", timerfd_settime(nb, 0, &(struct itimerspec){{0, 0}, {0, 0}}, &old));
    printf("old interval 10 ms: %d\n", old.it_interval.tv_nsec == 10000000);
    report("read after disarm", read(nb, &n, 8));
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    struct itimerspec past = {.it_value = now};
    report("absolute in the past", timerfd_settime(nb, TFD_TIMER_ABSTIME, &past, NULL));
    struct pollfd p = {.fd = nb, .events = POLLIN};
    report("poll ready", poll(&p, 1, 1000));
    printf("revents %d\n", p.revents);
    report("read", read(nb, &n, 8));
    printf("expirations %lu\n", (unsigned long)n);
    close(nb);
    close(fd);
}

static void signals(void) {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGUSR2);
    sigaddset(&mask, SIGKILL);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    report("bad size", syscall(SYS_signalfd4, -1, &mask, 4, 0));
    report("bad flags", signalfd(-1, &mask, 0x10));
    report("on a pipe", signalfd(0, &mask, 0));
    int fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    report("create", fd >= 0);
    struct signalfd_siginfo si;
    report("nothing pending", read(fd, &si, sizeof si));
    report("short buffer", read(fd, &si, 100));
    union sigval v = {.sival_int = 1234};
    sigqueue(getpid(), SIGUSR2, v);
    raise(SIGUSR1);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    report("poll", poll(&p, 1, 0));
    struct signalfd_siginfo two[2];
    report("read two", read(fd, two, sizeof two));
    for (int i = 0; i < 2; i++)
        printf("signo %u code %d pid is mine %d int %d\n", two[i].ssi_signo, two[i].ssi_code,
               two[i].ssi_pid == (uint32_t)getpid(), two[i].ssi_int);
    sigset_t only2;
    sigemptyset(&only2);
    sigaddset(&only2, SIGUSR2);
    report("update mask", signalfd(fd, &only2, 0) == fd);
    raise(SIGUSR1);
    report("USR1 no longer read", read(fd, &si, sizeof si));
    sigset_t pend;
    sigpending(&pend);
    printf("USR1 still pending %d\n", sigismember(&pend, SIGUSR1));
    pid_t child = fork();
    if (child == 0) {
        kill(getppid(), SIGUSR2);
        _exit(0);
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7}, out;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    report("epoll_wait", epoll_wait(ep, &out, 1, 5000));
    printf("data %u\n", out.data.u32);
    report("read from child", read(fd, &si, sizeof si));
    printf("signo %u code %d pid is child %d\n", si.ssi_signo, si.ssi_code,
           si.ssi_pid == (uint32_t)child);
    waitpid(child, NULL, 0);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("== timerfd\n");
    timers();
    printf("== signalfd\n");
    signals();
    return 0;
}
