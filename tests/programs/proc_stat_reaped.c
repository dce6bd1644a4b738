/* A /proc/<pid>/stat opened while the process lived: once it is reaped, a
 * read fails with ESRCH (Linux looks the task up again on every read).
 * Trinity's watchdog reads its children's stat files this way to learn they
 * are gone; in the sandbox the read kept returning the old text. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(const char *when, int fd)
{
    char buf[512];
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, buf, sizeof buf);
    printf("%s: %s\n", when, n > 0 ? "text" : n == 0 ? "empty" : strerror(errno));
}

int main(void)
{
    int p[2];
    if (pipe(p) != 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        close(p[1]);
        read(p[0], &c, 1);
        _exit(0);
    }
    close(p[0]);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("open: %s\n", strerror(errno));
        return 1;
    }
    show("alive", fd);
    close(p[1]);  /* the child exits */
    siginfo_t si;
    waitid(P_PID, pid, &si, WEXITED | WNOWAIT);
    show("zombie", fd);
    int st;
    waitpid(pid, &st, 0);
    show("reaped", fd);
    return 0;
}
