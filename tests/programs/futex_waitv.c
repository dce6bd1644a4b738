/* futex_waitv(2): the woken futex's index, EAGAIN for a changed word,
 * ETIMEDOUT for an absolute timeout, Linux's argument checks; and
 * FUTEX_CMP_REQUEUE's negative counts (EINVAL) and shared words that are
 * unmapped or PROT_NONE (EFAULT). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

struct waitv {
    uint64_t val;
    uint64_t uaddr;
    uint32_t flags;
    uint32_t reserved;
};

static uint32_t words[3];

static void show(const char *what, long r) {
    printf("%s = %ld errno %d\n", what, r, r < 0 ? errno : 0);
    errno = 0;
}

static long waitv(struct waitv *w, unsigned n, unsigned flags, struct timespec *ts, int clk) {
    return syscall(SYS_futex_waitv, w, n, flags, ts, clk);
}

static void *waker(void *arg) {
    (void)arg;
    /* wake word 1 until someone is woken (the waiter may not sleep yet) */
    while (syscall(SYS_futex, &words[1], FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) == 0)
        sched_yield();
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct waitv w[3];
    for (int i = 0; i < 3; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].uaddr = (uintptr_t)&words[i];
        w[i].flags = 2 | 128; /* FUTEX2_SIZE_U32 | FUTEX2_PRIVATE */
    }
    pthread_t th;
    pthread_create(&th, NULL, waker, NULL);
    show("woken index", waitv(w, 3, 0, NULL, 0));
    pthread_join(th, NULL);

    w[2].val = 5;
    show("changed word", waitv(w, 3, 0, NULL, 0));
    w[2].val = 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += 20000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    show("timeout", waitv(w, 3, 0, &ts, CLOCK_MONOTONIC));
    show("bad clock", waitv(w, 3, 0, &ts, CLOCK_BOOTTIME));
    show("flags", waitv(w, 3, 1, NULL, 0));
    show("none", waitv(w, 0, 0, NULL, 0));
    show("too many", waitv(w, 129, 0, NULL, 0));
    show("null", waitv(NULL, 1, 0, NULL, 0));
    w[0].flags = 3 | 128; /* FUTEX2_SIZE_U64: not supported */
    show("size u64", waitv(w, 1, 0, NULL, 0));
    w[0].flags = 2 | 128;
    w[0].reserved = 1;
    show("reserved", waitv(w, 1, 0, NULL, 0));
    w[0].reserved = 0;
    w[0].uaddr += 1;
    show("misaligned", waitv(w, 1, 0, NULL, 0));
    w[0].uaddr -= 1;
    show("bad array", waitv((struct waitv *)8, 1, 0, NULL, 0));

    long pg = sysconf(_SC_PAGESIZE);
    uint32_t *none = mmap(NULL, pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint32_t *gone = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(gone, pg);
    show("requeue negative wake",
         syscall(SYS_futex, &words[0], FUTEX_CMP_REQUEUE, -1, (void *)1, &words[1], 0));
    show("requeue negative move",
         syscall(SYS_futex, &words[0], FUTEX_CMP_REQUEUE, 1, (void *)-1L, &words[1], 0));
    show("requeue changed",
         syscall(SYS_futex, &words[0], FUTEX_CMP_REQUEUE, 1, (void *)1, &words[1], 7));
    show("requeue uaddr2 PROT_NONE",
         syscall(SYS_futex, &words[0], FUTEX_CMP_REQUEUE, 1, (void *)1, none, 0));
    show("requeue uaddr2 unmapped",
         syscall(SYS_futex, &words[0], FUTEX_CMP_REQUEUE, 1, (void *)1, gone, 0));
    show("requeue ok", syscall(SYS_futex, &words[0], FUTEX_CMP_REQUEUE, 1, (void *)1, &words[1], 0));
    return 0;
}
