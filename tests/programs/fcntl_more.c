/* fcntl's owner, signal, lease and pipe-size commands, positional I/O on a
 * pipe (ESPIPE before EBADF), fsync of files without an fsync operation, and
 * waitpid(INT_MIN); run in a directory given as argv[1]. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *what, long r) {
    if (r < 0)
        printf("%s: %s\n", what, strerrorname_np(errno));
    else
        printf("%s: %ld\n", what, r);
}

int main(int argc, char **argv) {
    if (argc < 2 || chdir(argv[1]))
        return 2;
    int fd = open("f", O_CREAT | O_RDWR, 0644);
    report("F_GETOWN fresh", fcntl(fd, F_GETOWN));
    report("F_SETOWN self", fcntl(fd, F_SETOWN, getpid()));
    report("F_GETOWN", fcntl(fd, F_GETOWN) == getpid());
    report("F_SETOWN group", fcntl(fd, F_SETOWN, -getpgrp()));
    report("F_GETOWN group", fcntl(fd, F_GETOWN) == -getpgrp());
    report("F_SETOWN missing", fcntl(fd, F_SETOWN, 99999999));
    struct f_owner_ex ex = {F_OWNER_TID, getpid()}, got;
    report("F_SETOWN_EX tid", fcntl(fd, F_SETOWN_EX, &ex));
    report("F_GETOWN_EX", fcntl(fd, F_GETOWN_EX, &got));
    printf("owner_ex type %d self %d\n", got.type, got.pid == getpid());
    ex.type = 7;
    report("F_SETOWN_EX bad type", fcntl(fd, F_SETOWN_EX, &ex));
    report("F_SETSIG 10", fcntl(fd, F_SETSIG, SIGUSR1));
    report("F_GETSIG", fcntl(fd, F_GETSIG));
    report("F_SETSIG 99", fcntl(fd, F_SETSIG, 99));

    report("read lease on O_RDWR", fcntl(fd, F_SETLEASE, F_RDLCK));
    close(fd);
    int r1 = open("f", O_RDONLY);
    report("read lease", fcntl(r1, F_SETLEASE, F_RDLCK));
    report("F_GETLEASE", fcntl(r1, F_GETLEASE));
    int r2 = open("f", O_RDONLY);
    report("second read lease", fcntl(r2, F_SETLEASE, F_RDLCK));
    report("write lease with others open", fcntl(r2, F_SETLEASE, F_WRLCK));
    report("unlock", fcntl(r2, F_SETLEASE, F_UNLCK));
    report("unlock first", fcntl(r1, F_SETLEASE, F_UNLCK));
    close(r2);
    report("write lease alone", fcntl(r1, F_SETLEASE, F_WRLCK));
    report("F_GETLEASE write", fcntl(r1, F_GETLEASE));
    report("bad lease type", fcntl(r1, F_SETLEASE, 7));
    close(r1);
    int p[2];
    if (pipe(p))
        return 2;
    report("lease on a pipe", fcntl(p[0], F_SETLEASE, F_RDLCK));

    report("F_GETPIPE_SZ", fcntl(p[1], F_GETPIPE_SZ));
    report("F_SETPIPE_SZ 0", fcntl(p[1], F_SETPIPE_SZ, 0));
    report("F_SETPIPE_SZ 5000", fcntl(p[1], F_SETPIPE_SZ, 5000));
    report("F_SETPIPE_SZ 2^31+1", fcntl(p[1], F_SETPIPE_SZ, (1U << 31) + 1));
    report("F_GETPIPE_SZ on a file", fcntl(open("f", O_RDONLY), F_GETPIPE_SZ));

    char buf[8] = "abc";
    struct iovec iov = {buf, 3};
    report("pwrite64 on a pipe's read end", pwrite(p[0], buf, 3, 0));
    report("pread64 on a pipe's write end", pread(p[1], buf, 3, 0));
    report("pwritev2 on a pipe's read end", pwritev2(p[0], &iov, 1, 0, 0));
    report("pwritev2 offset -1 on the read end", pwritev2(p[0], &iov, 1, -1, 0));
    report("preadv2 on the write end", preadv2(p[1], &iov, 1, 0, 0));
    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    report("fsync pipe", fsync(p[1]));
    report("fdatasync socket", fdatasync(s[0]));
    report("fsync /dev/null", fsync(open("/dev/null", O_WRONLY)));
    report("fsync file", fsync(open("f", O_RDONLY)));
    report("fsync directory", fsync(open(".", O_RDONLY | O_DIRECTORY)));

    report("waitpid INT_MIN", waitpid(INT_MIN, NULL, 0));
    report("waitpid INT_MIN WNOHANG", waitpid(INT_MIN, NULL, WNOHANG));
    return 0;
}
