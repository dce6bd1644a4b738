/* Under a pids limit (a pids cgroup natively, the container's pids limit in the
 * sandbox): fork children that wait until fork fails, then a thread must fail
 * the same way, then, once the children are gone, fork works again.
 * Prints how many children it made and each errno by name. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CHILDREN 200

static void *idle(void *arg) { return arg; }

static const char *name(int e) {
    switch (e) {
    case 0: return "ok";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EINTR: return "EINTR";
    default: return strerror(e);
    }
}

int main(void) {
    int gate[2];
    if (pipe(gate) != 0) { perror("pipe"); return 1; }
    int made = 0, err = 0;
    while (made < MAX_CHILDREN) {
        pid_t pid = fork();
        if (pid < 0) { err = errno; break; }
        if (pid == 0) {
            char c;
            close(gate[1]);
            ssize_t n = read(gate[0], &c, 1); /* EOF when the parent closes it */
            _exit(n == 0 ? 0 : 3);
        }
        made++;
    }
    printf("children %d, then fork: %s\n", made, name(err));
    pthread_t th;
    int rc = pthread_create(&th, NULL, idle, NULL);
    printf("pthread_create at the limit: %s\n", name(rc));
    if (rc == 0) pthread_join(th, NULL);
    close(gate[1]);
    int reaped = 0, status;
    while (wait(&status) > 0)
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) reaped++;
    printf("reaped %d\n", reaped);
    pid_t pid = fork();
    if (pid == 0) _exit(7);
    if (pid < 0) { printf("fork after: %s\n", name(errno)); return 1; }
    waitpid(pid, &status, 0);
    printf("fork after: child exit %d\n", WEXITSTATUS(status));
    rc = pthread_create(&th, NULL, idle, NULL);
    if (rc == 0) pthread_join(th, NULL);
    printf("pthread_create after: %s\n", name(rc));
    fflush(stdout);
    return 0;
}
