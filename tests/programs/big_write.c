/* One large write(2) to a pipe or a stream socket with a reader on the
 * other end (tests/test_memlimit.py): every byte must arrive, in order.
 *
 * usage: big_write MIB HOW
 *   HOW: pipe     one write(2) of MIB MiB to a pipe
 *        pipev    one writev(2) of it in three pieces to a pipe
 *        socket   one write(2) to a unix SOCK_STREAM socketpair
 *        send     one send(2) to a unix SOCK_STREAM socketpair
 * The buffer is one 16 MiB memfd mapped again and again, so the program's
 * own memory stays small whatever MIB is (the test runs it under a memory
 * limit far below MIB). The child reads it all and prints the byte count
 * and a checksum; the parent prints what its one call returned. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define WINDOW (16L << 20)
#define RBUF (1L << 20)

static char rbuf[RBUF];

static char *big_buffer(long size)
{
    int fd = memfd_create("big_write", 0);
    if (fd < 0 || ftruncate(fd, WINDOW) != 0)
        return NULL;
    char *w = mmap(NULL, WINDOW, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (w == MAP_FAILED)
        return NULL;
    for (long i = 0; i < WINDOW; i++)
        w[i] = (char)((i * 7 + 3) ^ (i >> 12));
    munmap(w, WINDOW);
    char *p = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    for (long off = 0; off < size; off += WINDOW)
        if (mmap(p + off, WINDOW, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED)
            return NULL;
    close(fd);
    return p;
}

static void reader(int fd)
{
    uint64_t sum = 0xcbf29ce484222325ULL; /* FNV-1a */
    long total = 0;
    for (;;) {
        ssize_t n = read(fd, rbuf, RBUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0)
                printf("read error %s\n", strerror(errno));
            break;
        }
        for (ssize_t i = 0; i < n; i++)
            sum = (sum ^ (unsigned char)rbuf[i]) * 0x100000001b3ULL;
        total += n;
    }
    printf("read: %ld sum %016llx\n", total, (unsigned long long)sum);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: big_write MIB pipe|pipev|socket|send\n");
        return 2;
    }
    long size = atol(argv[1]) << 20;
    const char *how = argv[2];
    setvbuf(stdout, NULL, _IONBF, 0);
    char *buf = size > 0 ? big_buffer(size) : NULL;
    if (buf == NULL) {
        perror("buffer");
        return 1;
    }
    int fds[2];
    int is_pipe = !strncmp(how, "pipe", 4);
    if (is_pipe ? pipe(fds) : socketpair(AF_UNIX, SOCK_STREAM, 0, fds)) {
        perror("pipe");
        return 1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[1]);
        reader(fds[0]);
        _exit(0);
    }
    close(fds[0]);
    ssize_t n;
    if (!strcmp(how, "pipev")) {
        long a = size / 3, b = size / 3;
        struct iovec iov[3] = {{buf, a}, {buf + a, b}, {buf + a + b, size - a - b}};
        n = writev(fds[1], iov, 3);
    } else if (!strcmp(how, "send")) {
        n = send(fds[1], buf, size, 0);
    } else {
        n = write(fds[1], buf, size);
    }
    if (n < 0)
        printf("wrote: error %s\n", strerror(errno));
    else
        printf("wrote: %ld\n", (long)n);
    close(fds[1]);
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return 1;
    printf("child: %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return 0;
}
