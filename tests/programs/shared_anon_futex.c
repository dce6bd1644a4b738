/* MAP_SHARED|MAP_ANONYMOUS memory inherited through fork: stores are seen by
   both processes, and futex wait/wake and requeue meet across the processes
   (non-private futexes on shared memory). */
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long fx(uint32_t *a, int op, uint32_t v, void *t, uint32_t *a2, uint32_t v3) {
    return syscall(SYS_futex, a, op, v, t, a2, v3);
}

/* The child sleeps on w (value 0) with a 10 s timeout: 0 if woken. */
static int child_wait(uint32_t *w) {
    struct timespec ts = {10, 0};
    long r = fx(w, FUTEX_WAIT, 0, &ts, NULL, 0);
    return r == 0 ? 0 : (errno == ETIMEDOUT ? 3 : 4);
}

int main(void) {
    uint32_t *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) { perror("mmap"); return 1; }
    sh[10] = 5;
    pid_t pid = fork();
    if (pid == 0) {
        sh[11] = sh[10] + 1;
        _exit(child_wait(&sh[0]));
    }
    int st, woken = 0;
    while (!woken && waitpid(pid, &st, WNOHANG) == 0) {
        woken = (int)fx(&sh[0], FUTEX_WAKE, 1, NULL, NULL, 0);
        if (!woken) sched_yield();
    }
    if (woken) waitpid(pid, &st, 0);
    printf("wake: woken %d, child exit %d, child stored %u\n", woken, WEXITSTATUS(st), sh[11]);

    /* requeue: the child waits on sh[1]; the parent moves it to sh[2], then wakes sh[2] */
    pid = fork();
    if (pid == 0) _exit(child_wait(&sh[1]));
    long moved = 0;
    while (moved == 0 && waitpid(pid, &st, WNOHANG) == 0) {
        moved = fx(&sh[1], FUTEX_CMP_REQUEUE, 0, (void *)1L, &sh[2], 0);
        if (!moved) sched_yield();
    }
    /* Wake the moved waiter; bounded by the child's life, as the loops above
       (a waiter that left, by its timeout on a starved machine, never
       answers: an unbounded loop here hung the native run under load). */
    woken = 0;
    int reaped = 0;
    while (moved && !woken) {
        woken = (int)fx(&sh[2], FUTEX_WAKE, 1, NULL, NULL, 0);
        if (!woken && waitpid(pid, &st, WNOHANG) == pid) { reaped = 1; break; }
        if (!woken) sched_yield();
    }
    if (!reaped) waitpid(pid, &st, 0);
    printf("requeue: moved %ld, woken %d, child exit %d\n", moved, woken, WEXITSTATUS(st));

    /* a private-flag wake does not reach another process's waiter */
    printf("private wake across processes: %ld\n", fx(&sh[3], FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0));
    /* bad address */
    long r = fx((uint32_t *)8, FUTEX_WAKE, 1, NULL, NULL, 0);
    printf("wake unmapped: %ld %d\n", r, r < 0 ? errno : 0);
    return 0;
}
