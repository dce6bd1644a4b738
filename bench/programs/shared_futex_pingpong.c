/* N round trips between two PROCESSES over a futex word in MAP_SHARED
 * anonymous memory (shared futexes: keyed by the page, not the mm). The
 * parent sets the word to 1 and FUTEX_WAKEs, the child waits for 1, sets it
 * back to 0 and wakes the parent. The child is forked and reaped for N = 0
 * too. Usage: shared_futex_pingpong N */
#include <errno.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void fwait(_Atomic int *w, int v)
{
    if (syscall(SYS_futex, w, FUTEX_WAIT, v, NULL, NULL, 0) < 0 && errno != EAGAIN
        && errno != EINTR) {
        perror("FUTEX_WAIT");
        exit(1);
    }
}

static void fwake(_Atomic int *w)
{
    if (syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0) < 0) {
        perror("FUTEX_WAKE");
        exit(1);
    }
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 0;
    _Atomic int *turn = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (turn == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        for (;;) {
            int t;
            while ((t = *turn) == 0)
                fwait(turn, 0);
            if (t == 2)
                _exit(0);
            *turn = 0;
            fwake(turn);
        }
    }
    for (long i = 0; i < n; i++) {
        *turn = 1;
        fwake(turn);
        while (*turn == 1)
            fwait(turn, 1);
    }
    *turn = 2;
    fwake(turn);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
