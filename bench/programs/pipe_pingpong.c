/* N round trips of one byte between two processes over two pipes: the parent
 * writes a byte, the child reads it and writes it back, the parent reads it.
 * Each round trip is two writes, two reads and two sleep/wake hand-offs. The
 * child is forked and reaped for N = 0 too, so t(N) - t(0) is the round trips
 * alone. Usage: pipe_pingpong N */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 0;
    int down[2], up[2];
    if (pipe(down) || pipe(up)) {
        perror("pipe");
        return 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    char c = 'x';
    if (pid == 0) {
        close(down[1]);
        close(up[0]);
        ssize_t r;
        while ((r = read(down[0], &c, 1)) == 1)
            if (write(up[1], &c, 1) != 1)
                _exit(1);
        _exit(r == 0 ? 0 : 1);
    }
    close(down[0]);
    close(up[1]);
    for (long i = 0; i < n; i++) {
        if (write(down[1], &c, 1) != 1 || read(up[0], &c, 1) != 1) {
            perror("ping-pong");
            return 1;
        }
    }
    close(down[1]); /* EOF: the child exits */
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
        fprintf(stderr, "waitpid: child %d status %#x\n", (int)pid, status);
        return 1;
    }
    return 0;
}
