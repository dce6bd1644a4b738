/* fault_probe: calls sysinfo(2) (the syscall a fault-containment test makes
 * fail in the Sentry) from the main thread, a second thread and a forked
 * child, then shows the process and the sandbox still work: a file written
 * and read back, a pipe, the child's exit status.  Natively every sysinfo
 * succeeds (prints "0 OK"). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

static void probe(const char *who)
{
    struct sysinfo si;
    errno = 0;
    long r = syscall(SYS_sysinfo, &si);
    const char *e = r == 0 ? "OK" : errno == EIO ? "EIO" : errno == EFAULT ? "EFAULT"
                  : strerror(errno);
    printf("%s: sysinfo %ld %s\n", who, r, e);
    fflush(stdout);
}

static void *thread_main(void *arg)
{
    (void)arg;
    probe("thread");
    return NULL;
}

int main(void)
{
    for (int i = 0; i < 3; i++)
        probe("main");
    pthread_t t;
    if (pthread_create(&t, NULL, thread_main, NULL) != 0 || pthread_join(t, NULL) != 0) {
        printf("thread failed\n");
        return 1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        probe("child");
        _exit(3);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        printf("fork/wait failed\n");
        return 1;
    }
    printf("child exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    char path[] = "/tmp/fault_probe.XXXXXX";
    int fd = mkstemp(path);
    char buf[16] = {0};
    if (fd < 0 || write(fd, "still-here", 10) != 10 || pread(fd, buf, 10, 0) != 10) {
        printf("file failed: %s\n", strerror(errno));
        return 1;
    }
    unlink(path);
    int p[2];
    char c = 0;
    if (pipe(p) != 0 || write(p[1], "x", 1) != 1 || read(p[0], &c, 1) != 1 || c != 'x') {
        printf("pipe failed\n");
        return 1;
    }
    printf("file %s, pipe ok\n", buf);
    return 0;
}
