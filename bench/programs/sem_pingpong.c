/* N round trips between two processes over two POSIX named semaphores
 * (sem_open: /dev/shm files mapped MAP_SHARED). The child is forked and
 * reaped for N = 0 too. Usage: sem_pingpong N */
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 0;
    char a[64], b[64];
    snprintf(a, sizeof a, "/bench-ping-%d", getpid());
    snprintf(b, sizeof b, "/bench-pong-%d", getpid());
    sem_t *ping = sem_open(a, O_CREAT | O_EXCL, 0600, 0);
    sem_t *pong = sem_open(b, O_CREAT | O_EXCL, 0600, 0);
    if (ping == SEM_FAILED || pong == SEM_FAILED) {
        perror("sem_open");
        return 1;
    }
    sem_unlink(a);
    sem_unlink(b);
    pid_t pid = fork();
    if (pid == 0) {
        for (long i = 0; i < n; i++) {
            sem_wait(ping);
            sem_post(pong);
        }
        _exit(0);
    }
    for (long i = 0; i < n; i++) {
        sem_post(ping);
        sem_wait(pong);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
