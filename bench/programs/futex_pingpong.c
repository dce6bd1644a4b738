/* N round trips between two threads of one process over raw futexes: the
 * main thread sets a shared word to 1 and FUTEX_WAKEs, the other thread
 * FUTEX_WAITs until it sees 1, sets it back to 0 and wakes the main thread.
 * Each round trip is two hand-offs (about two FUTEX_WAKEs and two FUTEX_WAITs;
 * a wait whose word already changed returns EAGAIN at once). The thread is
 * created and joined for N = 0 too. Build with -pthread. Usage: futex_pingpong N */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static _Atomic int turn; /* 0: main's turn, 1: the thread's, 2: stop */

static void futex_wait(_Atomic int *word, int val)
{
    if (syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0) < 0
        && errno != EAGAIN && errno != EINTR) {
        perror("FUTEX_WAIT");
        exit(1);
    }
}

static void futex_wake(_Atomic int *word)
{
    if (syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) < 0) {
        perror("FUTEX_WAKE");
        exit(1);
    }
}

static void *echo(void *arg)
{
    (void)arg;
    for (;;) {
        int t;
        while ((t = turn) == 0)
            futex_wait(&turn, 0);
        if (t == 2)
            return NULL;
        turn = 0;
        futex_wake(&turn);
    }
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 0;
    pthread_t th;
    int err = pthread_create(&th, NULL, echo, NULL);
    if (err) {
        fprintf(stderr, "pthread_create: %d\n", err);
        return 1;
    }
    for (long i = 0; i < n; i++) {
        turn = 1;
        futex_wake(&turn);
        while (turn == 1)
            futex_wait(&turn, 1);
    }
    turn = 2;
    futex_wake(&turn);
    pthread_join(th, NULL);
    return 0;
}
