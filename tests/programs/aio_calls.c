/* Linux native AIO through the raw syscalls (as libaio issues them) on a file
 * in argv[1]: each command, batches, errors at submit, eventfd completion
 * notice, timeouts, cancel, destroy, and a fork child without the context. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void report(const char *what, long r) {
    printf("%s: %s\n", what, r < 0 ? strerrorname_np(errno) : "ok");
}

static struct iocb cb(int op, int fd, void *buf, size_t n, long long off, unsigned long long data) {
    struct iocb c;
    memset(&c, 0, sizeof c);
    c.aio_lio_opcode = (unsigned short)op;
    c.aio_fildes = (unsigned)fd;
    c.aio_buf = (unsigned long long)(unsigned long)buf;
    c.aio_nbytes = n;
    c.aio_offset = off;
    c.aio_data = data;
    return c;
}

static int by_data(const void *x, const void *y) {
    const struct io_event *a = x, *b = y;
    return (a->data > b->data) - (a->data < b->data);
}

/* Completions, sorted: Linux runs fsync on a workqueue, so order may vary. */
static void drain(aio_context_t ctx, long min_nr, long nr) {
    struct io_event ev[16];
    long n = syscall(SYS_io_getevents, ctx, min_nr, nr, ev, NULL);
    printf("getevents(%ld, %ld): %ld\n", min_nr, nr, n);
    if (n > 0)
        qsort(ev, (size_t)n, sizeof ev[0], by_data);
    for (long i = 0; i < n; i++)
        printf("  data %llu res %lld\n", (unsigned long long)ev[i].data, (long long)ev[i].res);
}

int main(int argc, char **argv) {
    if (argc < 2 || chdir(argv[1]))
        return 2;
    aio_context_t ctx = 0;
    report("io_setup 0 events", syscall(SYS_io_setup, 0, &ctx));
    report("io_setup bad pointer", syscall(SYS_io_setup, 8, (void *)8));
    report("io_setup", syscall(SYS_io_setup, 128, &ctx));
    aio_context_t again = ctx;
    report("io_setup into a non-zero id", syscall(SYS_io_setup, 8, &again));

    int fd = open("f", O_CREAT | O_RDWR | O_TRUNC, 0644);
    int ro = open("f", O_RDONLY);
    char w1[] = "hello aio", w2[] = "-vec", r1[16] = {0}, r2[8] = {0}, r3[8] = {0};
    struct iovec wv[1] = {{w2, 4}}, rv[2] = {{r2, 3}, {r3, 3}};
    struct iocb a = cb(IOCB_CMD_PWRITE, fd, w1, 9, 0, 1);
    struct iocb b = cb(IOCB_CMD_PWRITEV, fd, wv, 1, 9, 2);
    struct iocb c = cb(IOCB_CMD_PREAD, fd, r1, 15, 6, 3);
    struct iocb d = cb(IOCB_CMD_PREADV, fd, rv, 2, 0, 4);
    struct iocb e = cb(IOCB_CMD_FSYNC, fd, NULL, 0, 0, 5);
    struct iocb f = cb(IOCB_CMD_PREAD, fd, r1, 4, 100, 6);
    struct iocb *batch[] = {&a, &b, &c, &d, &e, &f};
    printf("submit 6: %ld\n", syscall(SYS_io_submit, ctx, 6, batch));
    drain(ctx, 6, 16);
    printf("read: '%s' '%s' '%s'\n", r1, r2, r3);

    struct iocb bad_op = cb(99, fd, r1, 4, 0, 7);
    struct iocb bad_fd = cb(IOCB_CMD_PREAD, 999, r1, 4, 0, 8);
    struct iocb wr_ro = cb(IOCB_CMD_PWRITE, ro, w1, 4, 0, 9);
    struct iocb reserved = cb(IOCB_CMD_PREAD, fd, r1, 4, 0, 10);
    reserved.aio_reserved2 = 1;
    struct iocb neg = cb(IOCB_CMD_PREAD, fd, r1, 4, -5, 11);
    struct iocb good = cb(IOCB_CMD_PREAD, fd, r1, 4, 0, 13);
    struct iocb badbuf = cb(IOCB_CMD_PREAD, fd, (void *)8, 4, 0, 14);
    struct iocb badvec = cb(IOCB_CMD_PREADV, fd, (void *)8, 1, 0, 15);
    struct iocb *one[] = {&bad_op};
    report("bad opcode", syscall(SYS_io_submit, ctx, 1, one));
    one[0] = &bad_fd;
    report("bad fd", syscall(SYS_io_submit, ctx, 1, one));
    one[0] = &wr_ro;
    report("write on a read-only fd", syscall(SYS_io_submit, ctx, 1, one));
    one[0] = &reserved;
    report("reserved field set", syscall(SYS_io_submit, ctx, 1, one));
    one[0] = &neg;
    report("negative offset", syscall(SYS_io_submit, ctx, 1, one));
    one[0] = &badvec;
    report("bad iovec array", syscall(SYS_io_submit, ctx, 1, one));
    struct iocb *two[] = {&good, &bad_op};
    printf("good then bad: %ld\n", syscall(SYS_io_submit, ctx, 2, two));
    one[0] = &badbuf;
    printf("bad buffer: %ld\n", syscall(SYS_io_submit, ctx, 1, one));
    drain(ctx, 2, 16);
    report("submit bad array pointer", syscall(SYS_io_submit, ctx, 1, (void *)8));
    report("submit bad context", syscall(SYS_io_submit, 12345, 1, batch));
    report("submit negative count", syscall(SYS_io_submit, ctx, (long)-1, batch));

    int efd = eventfd(0, 0);
    struct iocb g = cb(IOCB_CMD_PREAD, fd, r1, 2, 0, 12);
    g.aio_flags = IOCB_FLAG_RESFD;
    g.aio_resfd = (unsigned)efd;
    one[0] = &g;
    printf("submit with resfd: %ld\n", syscall(SYS_io_submit, ctx, 1, one));
    unsigned long long count = 0;
    if (read(efd, &count, 8) != 8)
        return 2;
    printf("eventfd count: %llu\n", count);
    drain(ctx, 1, 1);
    struct iocb h = g;
    h.aio_resfd = (unsigned)fd;
    one[0] = &h;
    report("resfd not an eventfd", syscall(SYS_io_submit, ctx, 1, one));

    struct io_event ev[4];
    struct timespec zero = {0, 0}, short_wait = {0, 20000000};
    printf("getevents zero timeout: %ld\n", syscall(SYS_io_getevents, ctx, 0, 4, ev, &zero));
    printf("getevents min 1, 20 ms: %ld\n", syscall(SYS_io_getevents, ctx, 1, 4, ev, &short_wait));
    report("getevents min > nr", syscall(SYS_io_getevents, ctx, 5, 4, ev, &zero));
    report("getevents bad context", syscall(SYS_io_getevents, 12345, 0, 4, ev, &zero));
    struct io_event result;
    report("cancel a completed request", syscall(SYS_io_cancel, ctx, &a, &result));

    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        one[0] = &a;
        report("fork child submit", syscall(SYS_io_submit, ctx, 1, one));
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    report("io_destroy", syscall(SYS_io_destroy, ctx));
    report("io_destroy again", syscall(SYS_io_destroy, ctx));
    report("submit after destroy", syscall(SYS_io_submit, ctx, 1, batch));
    return 0;
}
