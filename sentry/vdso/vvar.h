/*
 * pyvisor's time page ("vvar"): shared between the Sentry (writer) and the vDSO
 * (reader, in the application's process).  Layout is fixed; sentry/vdso/timepage.py
 * documents the semantics and keeps VVAR_* in step.
 *
 * A clock's value at TSC reading c is base_ns + ((c - base_cycles) * mult) >> VVAR_SHIFT.
 * The writer makes seq odd, rewrites the parameters, makes seq even again; a reader
 * retries while seq is odd or changed under it (a seqlock).  enabled == 0 means the
 * TSC is not usable here: every call takes the real (trapping) syscall.
 */
#ifndef PYVISOR_VVAR_H
#define PYVISOR_VVAR_H

#include <stdint.h>

#define VVAR_ABI_VERSION 1
#define VVAR_SHIFT 32
#define VVAR_NCLOCKS 4 /* REALTIME, MONOTONIC, MONOTONIC_RAW, BOOTTIME */
#define VVAR_SIZE 0x1000ULL

struct vvar_clock {
    uint64_t base_cycles;
    int64_t base_ns;
    uint64_t mult;
    uint64_t pad;
};

struct vvar {
    uint32_t seq;
    uint32_t enabled;
    uint32_t abi;
    /* Nonzero once a time namespace with offsets has a process (sentry/kernel/
     * timens.py): the page has no offsets, so only CLOCK_REALTIME is read here
     * and the monotonic and boot clocks take the syscall. */
    uint32_t slow_mono;
    struct vvar_clock clk[VVAR_NCLOCKS];
};

static inline uint64_t vvar_rdtsc(void) {
    uint32_t lo, hi;
    /* lfence orders rdtsc after earlier loads (the seq read), as Linux's vDSO does. */
    __asm__ volatile("lfence\n\trdtsc" : "=a"(lo), "=d"(hi) : : "memory");
    return ((uint64_t)hi << 32) | lo;
}

static inline int64_t vvar_eval(const volatile struct vvar_clock *c, uint64_t now) {
    uint64_t base = c->base_cycles;
    uint64_t d = now > base ? now - base : 0;
    return c->base_ns + (int64_t)(((unsigned __int128)d * c->mult) >> VVAR_SHIFT);
}

#endif
