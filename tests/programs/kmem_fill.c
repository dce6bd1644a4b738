/* Fill kernel buffers far past a memory limit: many pipes each filled to
 * capacity, then many unix socketpairs filled both ways, and a file read
 * before and while the pipes are full (tests/test_memlimit.py).
 *
 * usage: kmem_fill TARGET_MIB [FILE]
 * Each phase stops at TARGET_MIB held, or at the first error other than a
 * full buffer's EAGAIN, and prints what it held and why it stopped. After
 * everything is closed, a small second round must work again ("again ok").
 * Natively under a memory cgroup of less than TARGET_MIB the kernel's
 * OOM killer ends it; unlimited it reaches the target ("stop none"). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK 65536
#define WINDOW (8L << 20)
static char buf[CHUNK];

static const char *errname(int e)
{
    switch (e) {
    case 0: return "none";
    case ENOMEM: return "ENOMEM";
    case ENOBUFS: return "ENOBUFS";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case EAGAIN: return "EAGAIN";
    default: return "other";
    }
}

/* Write CHUNKs into fd until it is full (EAGAIN: 0) or an error (errno). */
static int fill(int fd, long *held, long target)
{
    while (*held < target) {
        ssize_t n = write(fd, buf, CHUNK);
        if (n > 0) {
            *held += n;
            continue;
        }
        return n < 0 && errno == EAGAIN ? 0 : (n < 0 ? errno : EIO);
    }
    return 0;
}

/* The file's checksum, read through MAP_PRIVATE windows: in the sandbox
 * those copies come through the Sentry's page cache (read(2) would bypass
 * it with a descriptor the Gofer donated). */
static void read_file(const char *path, const char *what)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        printf("%s: open %s\n", what, strerror(errno));
        return;
    }
    unsigned long sum = 0;
    for (off_t off = 0; off < st.st_size; off += WINDOW) {
        size_t len = st.st_size - off < WINDOW ? st.st_size - off : WINDOW;
        unsigned char *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, off);
        if (p == MAP_FAILED) {
            printf("%s: mmap %s\n", what, strerror(errno));
            close(fd);
            return;
        }
        for (size_t i = 0; i < len; i++)
            sum = sum * 31 + p[i];
        munmap(p, len);
    }
    close(fd);
    printf("%s: %lld MiB sum %lx\n", what, (long long)st.st_size >> 20, sum);
}

static int *fds;
static int nfds;

static void close_all(void)
{
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    nfds = 0;
}

/* Pipes filled to capacity until target bytes are held. */
static int pipes(long target, long *held)
{
    *held = 0;
    while (*held < target) {
        int p[2];
        if (pipe2(p, O_NONBLOCK) < 0)
            return errno;
        fds[nfds++] = p[0];
        fds[nfds++] = p[1];
        int err = fill(p[1], held, target);
        if (err)
            return err;
    }
    return 0;
}

/* Stream socketpairs filled both ways until target bytes are held. */
static int sockets(long target, long *held)
{
    *held = 0;
    while (*held < target) {
        int s[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s) < 0)
            return errno;
        fds[nfds++] = s[0];
        fds[nfds++] = s[1];
        for (int i = 0; i < 2; i++) {
            int err = fill(s[i], held, target);
            if (err)
                return err;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    long target = atol(argv[1]) << 20;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    fds = calloc(rl.rlim_cur + 1, sizeof *fds);
    memset(buf, 'k', sizeof buf);
    setvbuf(stdout, NULL, _IONBF, 0);

    if (argc > 2)
        read_file(argv[2], "file");
    long held;
    int err = pipes(target, &held);
    printf("pipes: %ld MiB stop %s\n", held >> 20, errname(err));
    if (argc > 2)
        read_file(argv[2], "file with pipes full");
    close_all();

    err = sockets(target, &held);
    printf("sockets: %ld MiB stop %s\n", held >> 20, errname(err));
    close_all();

    long small = 4L << 20;
    int e1 = pipes(small, &held);
    close_all();
    int e2 = sockets(small, &held);
    close_all();
    if (e1 || e2)
        printf("again: pipes %s sockets %s\n", errname(e1), errname(e2));
    else
        printf("again ok\n");
    return 0;
}
