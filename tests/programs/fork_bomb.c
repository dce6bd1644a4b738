/* A fork bomb that stops itself: every process forks as fast as it can, and
 * every child does the same, until fork fails; a process whose fork failed
 * waits 1 s (the bomb stays at its ceiling meanwhile), then exits.  The first
 * process reaps everything and prints how fork failed (EAGAIN under a pids
 * limit) and "bomb over".  Run it only where a pids limit bounds it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    int fds[2];
    if (pipe(fds) != 0)
        return 1;
    pid_t root = getpid();
    int err = 0;
    for (int depth = 0; depth < 64; depth++) {
        pid_t p = fork();
        if (p < 0) {
            err = errno;
            break;
        }
        if (p > 0)
            continue;  /* the parent forks again */
        /* the child: becomes a forker of its own */
    }
    if (getpid() != root) {
        if (err) {
            char e = (char)err;
            (void)!write(fds[1], &e, 1);
            sleep(1);
        }
        while (wait(NULL) > 0) {}
        _exit(0);
    }
    close(fds[1]);
    while (wait(NULL) > 0) {}
    char e = 0;
    int seen = read(fds[0], &e, 1) == 1 ? e : err;
    printf("fork failed with %s\nbomb over\n", seen == EAGAIN ? "EAGAIN" : strerror(seen));
    return 0;
}
