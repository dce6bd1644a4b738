/*
 * The Sentry's side of the time page: sampling a host clock against the TSC,
 * and publishing new parameters under the seqlock.  Kept in C so the write
 * window is a few instructions and the continuity point is read at publish.
 */
#include <stdint.h>
#include <time.h>

#include "vvar.h"

/* Read clock clk between two TSC reads, tries times; keep the try with the
 * narrowest TSC window.  out: tsc at the middle of that window, the clock's ns,
 * the window width in cycles. */
void vvar_sample(int clk, int tries, uint64_t *out) {
    uint64_t best = ~0ULL;
    for (int i = 0; i < tries; i++) {
        struct timespec ts;
        uint64_t a = vvar_rdtsc();
        clock_gettime(clk, &ts);
        uint64_t b = vvar_rdtsc();
        if (b - a < best) {
            best = b - a;
            out[0] = a + (b - a) / 2;
            out[1] = (uint64_t)((int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec);
            out[2] = best;
        }
    }
}

uint64_t vvar_now_cycles(void) { return vvar_rdtsc(); }

/* New parameters for every clock.  Clock i continues from its current value
 * (its old parameters read at this instant), so no reader ever sees it step
 * back, unless reset_tsc[i] is non-zero: then it reads reset_ns[i] at TSC
 * reset_tsc[i] (a first calibration, or a host clock that was stepped). */
void vvar_publish(struct vvar *v, const uint64_t *mult, const int64_t *reset_ns,
                  const uint64_t *reset_tsc, uint32_t enabled) {
    struct vvar_clock next[VVAR_NCLOCKS];
    uint64_t now = vvar_rdtsc();
    for (int i = 0; i < VVAR_NCLOCKS; i++) {
        next[i].base_cycles = now;
        next[i].mult = mult[i];
        next[i].pad = 0;
        if (reset_tsc[i]) {
            struct vvar_clock r = {reset_tsc[i], reset_ns[i], mult[i], 0};
            next[i].base_ns = vvar_eval(&r, now);
        } else {
            next[i].base_ns = vvar_eval(&v->clk[i], now);
        }
    }
    volatile struct vvar *w = v;
    w->seq = w->seq + 1;
    __asm__ volatile("" ::: "memory");
    for (int i = 0; i < VVAR_NCLOCKS; i++) {
        w->clk[i].base_cycles = next[i].base_cycles;
        w->clk[i].base_ns = next[i].base_ns;
        w->clk[i].mult = next[i].mult;
    }
    w->enabled = enabled;
    w->abi = VVAR_ABI_VERSION;
    __asm__ volatile("" ::: "memory");
    w->seq = w->seq + 1;
}
