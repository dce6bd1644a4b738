/* clocks: clock_gettime/clock_getres/gettimeofday/time/nanosleep. Prints only
 * booleans and values that are the same on any Linux host. Raw syscalls are
 * used where glibc would answer from the vDSO and for error cases. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int64_t ns(struct timespec t)
{
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static const char *err(long r)
{
    return r < 0 ? strerrorname_np(errno) : "ok";
}

int main(void)
{
    struct timespec a, b, res;
    int ok = 1;

    /* monotonic never goes backwards, via libc and via the raw syscall */
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < 2000; i++) {
        if (i % 2)
            clock_gettime(CLOCK_MONOTONIC, &b);
        else
            syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &b);
        ok &= ns(b) >= ns(a) && b.tv_nsec >= 0 && b.tv_nsec < 1000000000;
        a = b;
    }
    printf("monotonic non-decreasing %d\n", ok);

    struct timespec boot, mono;
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &mono);
    long r = syscall(SYS_clock_gettime, CLOCK_BOOTTIME, &boot);
    printf("boottime %s >= monotonic %d\n", err(r), ns(boot) >= ns(mono));

    /* realtime agrees with time() and gettimeofday() within 5 s */
    struct timespec rt;
    struct timeval tv;
    syscall(SYS_clock_gettime, CLOCK_REALTIME, &rt);
    time_t t1 = time(NULL);
    time_t t2 = (time_t)syscall(SYS_time, NULL);
    syscall(SYS_gettimeofday, &tv, NULL);
    printf("realtime plausible %d\n", rt.tv_sec > 1600000000); /* after 2020 */
    printf("time() close %d\n", t1 - rt.tv_sec <= 5 && rt.tv_sec - t1 <= 5);
    printf("raw time close %d\n", t2 - rt.tv_sec <= 5 && rt.tv_sec - t2 <= 5);
    printf("gettimeofday close %d usec range %d\n",
           tv.tv_sec - rt.tv_sec <= 5 && rt.tv_sec - tv.tv_sec <= 5,
           tv.tv_usec >= 0 && tv.tv_usec < 1000000);
    time_t t3 = 0;
    time_t t4 = (time_t)syscall(SYS_time, &t3);
    printf("time stores result %d\n", t3 == t4);

    /* resolutions */
    r = syscall(SYS_clock_getres, CLOCK_MONOTONIC, &res);
    printf("getres monotonic %s %lld.%09ld\n", err(r), (long long)res.tv_sec, res.tv_nsec);
    r = syscall(SYS_clock_getres, CLOCK_REALTIME, &res);
    printf("getres realtime %s %lld.%09ld\n", err(r), (long long)res.tv_sec, res.tv_nsec);
    r = syscall(SYS_clock_getres, CLOCK_MONOTONIC, NULL);
    printf("getres null %s\n", err(r));

    /* errors */
    r = syscall(SYS_clock_gettime, 12345, &a);
    printf("gettime bad clock %s\n", err(r));
    r = syscall(SYS_clock_getres, 12345, &res);
    printf("getres bad clock %s\n", err(r));
    r = syscall(SYS_clock_gettime, CLOCK_MONOTONIC, (void *)8);
    printf("gettime bad pointer %s\n", err(r));
    struct timespec bad = {0, 1000000000};
    r = syscall(SYS_nanosleep, &bad, NULL);
    printf("nanosleep nsec 1e9 %s\n", err(r));
    struct timespec neg = {-1, 0};
    r = syscall(SYS_nanosleep, &neg, NULL);
    printf("nanosleep negative %s\n", err(r));
    r = syscall(SYS_nanosleep, (void *)8, NULL);
    printf("nanosleep bad pointer %s\n", err(r));

    /* nanosleep sleeps at least as long as asked */
    struct timespec req = {0, 10 * 1000000}, rem = {7, 7};
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &a);
    r = syscall(SYS_nanosleep, &req, &rem);
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &b);
    printf("nanosleep 10ms %s slept enough %d\n", err(r), ns(b) - ns(a) >= 10 * 1000000);
    struct timespec zero = {0, 0};
    r = syscall(SYS_nanosleep, &zero, NULL);
    printf("nanosleep zero %s\n", err(r));
    r = syscall(SYS_sched_yield);
    printf("sched_yield %s\n", err(r));
    return 0;
}
