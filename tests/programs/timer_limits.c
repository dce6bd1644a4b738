/* Timers and timeouts at the edges of their types: setitimer/getitimer and
 * timer_settime/gettime with LLONG_MAX seconds (Linux saturates at KTIME_MAX
 * ns and reports that back), alarm(UINT_MAX), negative and bad-nanosecond
 * timeouts, and a sigqueue value of -1.  Prints each result for a
 * differential run; none of it may wait. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>
static void r(const char *w, long v) { printf("%s = %ld %s\n", w, v, v < 0 ? strerror(errno) : ""); errno = 0; }
int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct itimerval iv = {{LLONG_MAX, 0}, {LLONG_MAX, 999999}}, ov;
    r("setitimer(huge)", setitimer(ITIMER_REAL, &iv, NULL));
    r("getitimer", getitimer(ITIMER_REAL, &ov));
    printf("  interval=%lld.%06ld value_sec_big=%d\n", (long long)ov.it_interval.tv_sec, ov.it_interval.tv_usec, ov.it_value.tv_sec > 1000000000L);
    struct itimerval neg = {{0, 0}, {-1, 0}};
    r("setitimer(neg)", setitimer(ITIMER_REAL, &neg, NULL));
    struct itimerval badu = {{0, 0}, {1, 1000000}};
    r("setitimer(usec 1e6)", setitimer(ITIMER_REAL, &badu, NULL));
    struct itimerval zero = {{0,0},{0,0}};
    r("setitimer(0)", setitimer(ITIMER_REAL, &zero, NULL));
    r("alarm(UINT_MAX)", alarm(UINT_MAX));
    r("alarm(0)", alarm(0));
    timer_t t;
    r("timer_create", timer_create(CLOCK_MONOTONIC, NULL, &t));
    struct itimerspec is = {{LLONG_MAX, 0}, {LLONG_MAX, 999999999}}, os_;
    r("timer_settime(huge)", timer_settime(t, 0, &is, NULL));
    r("timer_gettime", timer_gettime(t, &os_));
    printf("  interval=%lld.%09ld big=%d\n", (long long)os_.it_interval.tv_sec, os_.it_interval.tv_nsec, os_.it_value.tv_sec > 1000000000L);
    struct itimerspec bad = {{0, 0}, {-1, 0}};
    r("timer_settime(neg)", timer_settime(t, 0, &bad, NULL));
    struct timespec ts = {-1, 0};
    r("nanosleep(neg)", nanosleep(&ts, NULL));
    struct timespec ts2 = {0, 1000000000};
    r("nanosleep(bad nsec)", nanosleep(&ts2, NULL));
    struct timespec abs0 = {0, 0};
    r("clock_nanosleep(abs 0)", clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &abs0, NULL));
    struct timespec absneg = {-5, 0};
    r("clock_nanosleep(abs neg)", clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &absneg, NULL));
    struct pollfd p = {0, 0, 0};
    struct timespec pz = {0, 0};
    r("ppoll(0 timeout)", ppoll(&p, 1, &pz, NULL));
    struct timespec pneg = {-1, 0};
    r("ppoll(neg timeout)", ppoll(&p, 1, &pneg, NULL));
    struct timeval tv = {-1, 0};
    r("select(neg tv)", select(0, NULL, NULL, NULL, &tv));
    struct rusage ru;
    r("getrusage(children)", getrusage(RUSAGE_CHILDREN, &ru));
    struct timespec res;
    r("clock_getres(bad clock)", clock_getres(12345, &res));
    r("clock_gettime(-1)", syscall(SYS_clock_gettime, -1, &res));
    r("clock_gettime(INT_MAX)", syscall(SYS_clock_gettime, INT_MAX, &res));
    sigset_t set; sigemptyset(&set); sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    struct timespec stw = {0, 0};
    r("sigtimedwait(0)", sigtimedwait(&set, NULL, &stw));
    struct timespec stwneg = {-1, 0};
    r("sigtimedwait(neg)", sigtimedwait(&set, NULL, &stwneg));
    union sigval sv; sv.sival_ptr = (void *)-1L;
    r("sigqueue(self, -1 ptr)", sigqueue(getpid(), SIGUSR1, sv));
    siginfo_t si;
    r("sigwaitinfo", sigwaitinfo(&set, &si));
    printf("  value=%ld code=%d\n", (long)si.si_value.sival_ptr, si.si_code);
    return 0;
}
