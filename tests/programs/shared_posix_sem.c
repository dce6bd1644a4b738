/* POSIX named semaphores (sem_open: a /dev/shm file mapped MAP_SHARED) between
   a parent and a fork child: a ping-pong, and a counter in shared memory
   guarded by a third semaphore. */
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    char n1[64], n2[64], n3[64];
    snprintf(n1, sizeof n1, "/pyv-ping-%d", getpid());
    snprintf(n2, sizeof n2, "/pyv-pong-%d", getpid());
    snprintf(n3, sizeof n3, "/pyv-mutex-%d", getpid());
    sem_t *ping = sem_open(n1, O_CREAT | O_EXCL, 0600, 0);
    sem_t *pong = sem_open(n2, O_CREAT | O_EXCL, 0600, 0);
    sem_t *mtx = sem_open(n3, O_CREAT | O_EXCL, 0600, 1);
    if (ping == SEM_FAILED || pong == SEM_FAILED || mtx == SEM_FAILED) { perror("sem_open"); return 1; }
    long *count = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 200; i++) {
            sem_wait(ping);
            sem_post(pong);
        }
        for (int i = 0; i < 500; i++) {
            sem_wait(mtx);
            long c = *count;
            *count = c + 1;
            sem_post(mtx);
        }
        _exit(0);
    }
    for (int i = 0; i < 200; i++) {
        sem_post(ping);
        sem_wait(pong);
    }
    for (int i = 0; i < 500; i++) {
        sem_wait(mtx);
        long c = *count;
        *count = c + 1;
        sem_post(mtx);
    }
    int st;
    waitpid(pid, &st, 0);
    int v;
    sem_getvalue(mtx, &v);
    printf("ping-pong done, count %ld, mutex value %d, child exit %d\n", *count, v, WEXITSTATUS(st));
    sem_unlink(n1);
    sem_unlink(n2);
    sem_unlink(n3);
    return 0;
}
