/*
 * pyvisor's vDSO: clock_gettime, gettimeofday, time, clock_getres and getcpu,
 * answered in the application's process from the time page the Sentry keeps
 * (vvar.h), mapped one page below this image.  Anything it cannot answer
 * (CPU-time and unknown clocks, getcpu, a host whose TSC is unusable) takes
 * the real syscall instruction, which traps to the Sentry like any other.
 *
 * Built freestanding (-nostdlib -fPIC -shared, vdso.lds): no relocations, no
 * libc, no stack protector (the application owns %fs).
 */
#include <stdint.h>

#include "vvar.h"

struct k_timespec {
    int64_t tv_sec;
    int64_t tv_nsec;
};
struct k_timeval {
    int64_t tv_sec;
    int64_t tv_usec;
};
struct k_timezone {
    int32_t tz_minuteswest;
    int32_t tz_dsttime;
};

/* The time page: one page before the ELF header (vdso.lds). */
extern const volatile struct vvar pyvisor_vvar __attribute__((visibility("hidden")));

#define NSEC 1000000000LL
#define NR_GETTIMEOFDAY 96
#define NR_TIME 201
#define NR_CLOCK_GETTIME 228
#define NR_CLOCK_GETRES 229
#define NR_GETCPU 309
#define SPIN_LIMIT 100000

static long sys3(long nr, long a, long b, long c) {
    long r;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"(nr), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "memory");
    return r;
}

/* The vvar index for a clock id, or -1 (the syscall answers).  The coarse
 * clocks read their fine clock: finer than Linux's tick, never behind it. */
static int clock_index(int clk) {
    switch (clk) {
    case 0: /* CLOCK_REALTIME */
    case 5: /* CLOCK_REALTIME_COARSE */
        return 0;
    case 1: /* CLOCK_MONOTONIC */
    case 6: /* CLOCK_MONOTONIC_COARSE */
        return 1;
    case 4: /* CLOCK_MONOTONIC_RAW */
        return 2;
    case 7: /* CLOCK_BOOTTIME */
        return 3;
    default:
        return -1;
    }
}

/* 0 with *ns set, or -1 when the page cannot answer (disabled, or a writer
 * that never finishes). */
static int read_clock(int idx, int64_t *ns) {
    const volatile struct vvar *v = &pyvisor_vvar;
    for (int spins = 0; spins < SPIN_LIMIT; spins++) {
        uint32_t seq = v->seq;
        __asm__ volatile("" ::: "memory");
        if (seq & 1) {
            __asm__ volatile("pause");
            continue;
        }
        if (!v->enabled || (idx != 0 && v->slow_mono))
            return -1;
        int64_t r = vvar_eval(&v->clk[idx], vvar_rdtsc());
        __asm__ volatile("" ::: "memory");
        if (v->seq == seq) {
            *ns = r;
            return 0;
        }
    }
    return -1;
}

int __vdso_clock_gettime(int clk, struct k_timespec *ts) {
    int idx = clock_index(clk);
    int64_t ns;
    if (idx < 0 || read_clock(idx, &ns) != 0)
        return (int)sys3(NR_CLOCK_GETTIME, clk, (long)ts, 0);
    ts->tv_sec = ns / NSEC;
    ts->tv_nsec = ns % NSEC;
    return 0;
}

int __vdso_gettimeofday(struct k_timeval *tv, struct k_timezone *tz) {
    int64_t ns;
    if (read_clock(0, &ns) != 0)
        return (int)sys3(NR_GETTIMEOFDAY, (long)tv, (long)tz, 0);
    if (tv) {
        tv->tv_sec = ns / NSEC;
        tv->tv_usec = (ns % NSEC) / 1000;
    }
    if (tz) { /* the Sentry's timezone is UTC (syscalls/time.py) */
        tz->tz_minuteswest = 0;
        tz->tz_dsttime = 0;
    }
    return 0;
}

long __vdso_time(long *t) {
    int64_t ns;
    if (read_clock(0, &ns) != 0)
        return sys3(NR_TIME, (long)t, 0, 0);
    long s = ns / NSEC;
    if (t)
        *t = s;
    return s;
}

/* Resolutions as the Sentry's clock_getres gives them (syscalls/time.py). */
int __vdso_clock_getres(int clk, struct k_timespec *res) {
    if (clock_index(clk) < 0)
        return (int)sys3(NR_CLOCK_GETRES, clk, (long)res, 0);
    if (res) {
        res->tv_sec = 0;
        res->tv_nsec = (clk == 5 || clk == 6) ? 4000000 : 1;
    }
    return 0;
}

/* The Sentry answers getcpu from the task's affinity, which the page does not
 * carry: always the syscall. */
long __vdso_getcpu(unsigned *cpu, unsigned *node, void *unused) {
    return sys3(NR_GETCPU, (long)cpu, (long)node, (long)unused);
}

int clock_gettime(int, struct k_timespec *) __attribute__((weak, alias("__vdso_clock_gettime")));
int gettimeofday(struct k_timeval *, struct k_timezone *)
    __attribute__((weak, alias("__vdso_gettimeofday")));
long time(long *) __attribute__((weak, alias("__vdso_time")));
int clock_getres(int, struct k_timespec *) __attribute__((weak, alias("__vdso_clock_getres")));
long getcpu(unsigned *, unsigned *, void *) __attribute__((weak, alias("__vdso_getcpu")));
