/* Readers parked on empty pipes (and unix sockets) are SIGKILLed, then the
 * write ends are closed: the Sentry must forget the dead readers before their
 * memory goes.  It crashed (SIGSEGV handing back a dead reader's slot) in
 * about one run of five with 300 readers parked for 4 s.
 * Usage: parked_kill N ROUNDS PARK_MS; prints "ok ROUNDS". */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 200, rounds = argc > 2 ? atoi(argv[2]) : 4;
    int park_ms = argc > 3 ? atoi(argv[3]) : 200;
    pid_t *pids = malloc(n * sizeof *pids);
    int *ends = malloc(n * sizeof *ends);
    for (int round = 0; round < rounds; round++) {
        for (int i = 0; i < n; i++) {
            int sv[2];
            if (i & 1 ? socketpair(AF_UNIX, SOCK_STREAM, 0, sv) : pipe(sv))
                return 2;
            pids[i] = fork();
            if (pids[i] < 0)
                return 3;
            if (pids[i] == 0) {
                char c;
                close(sv[1]);
                _exit(read(sv[0], &c, 1) == 0 ? 0 : 4);
            }
            close(sv[0]);
            ends[i] = sv[1];
        }
        usleep(park_ms * 1000);  /* let them all park, and stay parked a while */
        for (int i = 0; i < n; i++)
            kill(pids[i], SIGKILL);
        for (int i = 0; i < n; i++) {
            int status;
            if (waitpid(pids[i], &status, 0) != pids[i] || !WIFSIGNALED(status))
                return 5;
        }
        for (int i = 0; i < n; i++)
            close(ends[i]);
    }
    printf("ok %d\n", rounds);
    return 0;
}
