/* Advisory locks among the sandbox's processes: fcntl record locks (a child
 * sees the parent's write lock, F_GETLK names the owner, ranges split) and
 * flock (exclusive vs shared, LOCK_NB), in a scratch dir given as argv[1]. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *en(int e) { return e ? strerrorname_np(e) : "ok"; }

static int setlk(int fd, short type, off_t start, off_t len) {
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    return fcntl(fd, F_SETLK, &fl) == 0 ? 0 : errno;
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    char path[4096];
    snprintf(path, sizeof path, "%s/lockfile", argv[1]);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror("open");
        return 1;
    }
    if (write(fd, "0123456789", 10) != 10)
        return 1;
    printf("parent wrlck 0-4: %s\n", en(setlk(fd, F_WRLCK, 0, 5)));
    setvbuf(stdout, NULL, _IONBF, 0);
    pid_t parent = getpid();
    pid_t p = fork();
    if (p == 0) {
        int cfd = open(path, O_RDWR);
        int e = setlk(cfd, F_WRLCK, 2, 1);
        printf("child wrlck 2: %s\n", en(e));
        e = setlk(cfd, F_WRLCK, 6, 2);
        printf("child wrlck 6-7: %s\n", en(e));
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
        fcntl(cfd, F_GETLK, &fl);
        printf("getlk: type %s owner-is-parent %d start %ld\n",
               fl.l_type == F_WRLCK ? "WRLCK" : fl.l_type == F_UNLCK ? "UNLCK" : "RDLCK",
               fl.l_pid == parent, (long)fl.l_start);
        int ffd = open(path, O_RDONLY);
        e = flock(ffd, LOCK_EX | LOCK_NB) == 0 ? 0 : errno;
        printf("child flock ex nb: %s\n", en(e));
        _exit(0);
    }
    int st;
    waitpid(p, &st, 0);
    /* The child's flock went with its descriptions when it exited. */
    int f1 = open(path, O_RDONLY), f2 = open(path, O_RDONLY);
    printf("flock sh 1: %s\n", en(flock(f1, LOCK_SH | LOCK_NB) ? errno : 0));
    printf("flock sh 2: %s\n", en(flock(f2, LOCK_SH | LOCK_NB) ? errno : 0));
    printf("flock ex 2: %s\n", en(flock(f2, LOCK_EX | LOCK_NB) ? errno : 0));
    flock(f1, LOCK_UN);
    printf("flock ex 2 after un: %s\n",
           en(flock(f2, LOCK_EX | LOCK_NB) ? errno : 0));
    printf("unlock 0-4: %s\n", en(setlk(fd, F_UNLCK, 0, 5)));
    return 0;
}
