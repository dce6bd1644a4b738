/* A file mapping's pages past the end of the file: touching one is SIGBUS
 * (BUS_ADRERR, si_addr the address), shared or private, read or write,
 * after mprotect too; once the file grows over them they work, and a private
 * mapping then shows the file's new bytes (the LTP's mmap13).  Run on a
 * memfd and on a file in argv[1]. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096
static sigjmp_buf env;
static volatile int code;
static void *volatile fault_addr;

static void on_bus(int s, siginfo_t *si, void *u) {
    (void)s; (void)u;
    code = si->si_code;
    fault_addr = si->si_addr;
    siglongjmp(env, 1);
}

/* "ok <byte>" or "SIGBUS code N at +off" */
static void touch(const char *what, char *base, long off, int write) {
    code = 0;
    if (sigsetjmp(env, 1) == 0) {
        volatile char *p = base + off;
        if (write) *p = 'w';
        char c = *p;
        printf("%s: ok %d\n", what, c);
    } else {
        printf("%s: SIGBUS code %d at +%ld\n", what, code, (char *)fault_addr - base);
    }
}

static void run(const char *kind, int fd, int shrink) {
    printf("-- %s\n", kind);
    ftruncate(fd, 0);
    pwrite(fd, "abc", 3, 0);
    char *s = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *p = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (s == MAP_FAILED || p == MAP_FAILED) { printf("mmap failed\n"); return; }
    touch("shared page 0", s, 1, 0);
    touch("shared tail of page 0", s, 4000, 1);
    touch("shared page 1 read", s, PG + 5, 0);
    touch("shared page 2 write", s, 2 * PG + 7, 1);
    touch("private page 1", p, PG, 0);
    pid_t pid = fork();
    if (pid == 0) {  /* the child's copy of the mapping ends there too */
        touch("child: shared page 1", s, PG + 3, 0);
        touch("child: private page 1", p, PG + 3, 1);
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    mprotect(s, 3 * PG, PROT_READ);
    touch("shared page 1 after mprotect", s, PG, 0);
    mprotect(s, 3 * PG, PROT_READ | PROT_WRITE);
    pwrite(fd, "grown", 5, PG + 16);  /* the file now ends in page 1 */
    touch("shared page 1 after growth", s, PG + 16, 0);
    touch("shared page 2 after growth", s, 2 * PG, 0);
    touch("private page 1 after growth", p, PG + 17, 0);
    ftruncate(fd, 3 * PG);
    touch("shared page 2 after ftruncate", s, 2 * PG + 1, 1);
    if (shrink) {  /* a Sentry-held file (memfd) */
        ftruncate(fd, PG);
        touch("shared page 1 after shrinking", s, PG + 1, 0);
        touch("shared page 0 after shrinking", s, 1, 0);
        ftruncate(fd, 3 * PG);
    }
    munmap(s, 3 * PG);
    munmap(p, 2 * PG);
    /* a shared futex word on a page the file lost: EFAULT (futex_wake05) */
    int *w = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    errno = 0;
    long r = syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
    printf("futex wake within the file: %ld errno %d\n", r, errno);
    ftruncate(fd, 0);
    errno = 0;
    r = syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
    printf("futex wake after truncation: %ld errno %d\n", r, errno);
    munmap(w, PG);
}

int main(int argc, char **argv) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_bus;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGBUS, &sa, NULL);
    run("memfd", memfd_create("eof", 0), 1);
    if (argc > 1) {
        char path[4096];
        snprintf(path, sizeof path, "%s/file", argv[1]);
        run("file", open(path, O_RDWR | O_CREAT | O_TRUNC, 0600), 0);
    }
    return 0;
}
