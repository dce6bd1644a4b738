/* A fifo's unread bytes go when its last opener closes it (Linux frees the
 * pipe then); while one end stays open they stay. Differential. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void try_read(int fd, const char *what)
{
    char buf[16];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0)
        printf("%s: read -1 %s\n", what, errno == EAGAIN ? "EAGAIN" : strerror(errno));
    else
        printf("%s: read %zd '%.*s'\n", what, n, (int)n, buf);
}

int main(int argc, char **argv)
{
    char path[4096];
    if (argc < 2)
        return 2;
    snprintf(path, sizeof path, "%s/fifo", argv[1]);
    if (mkfifo(path, 0600) < 0) {
        perror("mkfifo");
        return 1;
    }
    int rw = open(path, O_RDWR);
    write(rw, "abc", 3);
    close(rw);
    rw = open(path, O_RDWR | O_NONBLOCK);
    try_read(rw, "after the last close");

    int rd = open(path, O_RDONLY | O_NONBLOCK);
    write(rw, "def", 3);
    close(rw);
    try_read(rd, "a reader left open");
    int wr = open(path, O_WRONLY | O_NONBLOCK);
    write(wr, "ghi", 3);
    close(wr);
    close(rd);
    rd = open(path, O_RDONLY | O_NONBLOCK);
    try_read(rd, "reopened after both closed");
    close(rd);
    unlink(path);
    return 0;
}
