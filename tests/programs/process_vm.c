/* process_vm_readv / process_vm_writev between a parent and its fork child
   (the child's buffer is at the same address), scattered iovecs, a partial
   transfer ending at an unmapped remote page, and the errors. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static char buf[64] = "child's secret: 0123456789";

static void report(const char *what, long r) {
    printf("%s: %ld %s\n", what, r, r < 0 ? strerror(errno) : "ok");
}

int main(void) {
    int go[2], done[2];
    pipe(go);
    pipe(done);
    long p = sysconf(_SC_PAGESIZE);
    char *edge = mmap(NULL, 2 * p, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(edge + p, p);
    memset(edge, 'E', p);
    pid_t pid = fork();
    if (pid == 0) {
        strcpy(buf, "child's secret: 0123456789");
        write(done[1], "r", 1);
        char c;
        read(go[0], &c, 1);
        printf("child sees: %s\n", buf);
        fflush(stdout);
        _exit(0);
    }
    char c;
    read(done[0], &c, 1);
    strcpy(buf, "parent's copy");
    char a[10] = {0}, b[20] = {0};
    struct iovec local[2] = {{a, 9}, {b, 17}};
    struct iovec remote[1] = {{buf, 26}};
    report("readv", process_vm_readv(pid, local, 2, remote, 1, 0));
    printf("read: [%s] [%s]\n", a, b);
    struct iovec wl[1] = {{"WRITTEN", 7}};
    struct iovec wr[1] = {{buf + 16, 7}};
    report("writev", process_vm_writev(pid, wl, 1, wr, 1, 0));
    char big[200];
    struct iovec bl[1] = {{big, sizeof big}};
    struct iovec br[1] = {{edge + p - 100, 200}};
    report("partial at an unmapped page", process_vm_readv(pid, bl, 1, br, 1, 0));
    struct iovec fr[1] = {{edge + p, 10}};
    report("all unmapped", process_vm_readv(pid, bl, 1, fr, 1, 0));
    report("bad flags", process_vm_readv(pid, local, 2, remote, 1, 1));
    report("no such pid", process_vm_readv(999999, local, 2, remote, 1, 0));
    report("too many iovecs", process_vm_readv(pid, local, 2000, remote, 1, 0));
    report("self", process_vm_readv(getpid(), local, 1, remote, 1, 0));
    printf("self read: [%s]\n", a);
    write(go[1], "g", 1);
    waitpid(pid, NULL, 0);
    return 0;
}
