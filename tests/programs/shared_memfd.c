/* memfd_create: an unnamed file whose MAP_SHARED pages a fork child stores
   into and the parent reads with read(2); its /proc/self/fd link and mode;
   memfd_create's errors.  Also MAP_SHARED of /dev/zero (shared anonymous
   memory) and mprotect(PROT_WRITE) of a shared mapping of a read-only fd. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *what, long r) {
    printf("%s: %ld %s\n", what, r, r < 0 ? strerror(errno) : "ok");
}

int main(void) {
    int fd = memfd_create("pyv-test", MFD_CLOEXEC);
    if (fd < 0) { perror("memfd_create"); return 1; }
    if (ftruncate(fd, 8192) < 0) { perror("ftruncate"); return 1; }
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) { perror("mmap"); return 1; }
    pid_t pid = fork();
    if (pid == 0) {
        strcpy(m + 4100, "memfd child");
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    char buf[32] = {0};
    pread(fd, buf, 11, 4100);
    printf("read: %s\n", buf);
    struct stat st;
    fstat(fd, &st);
    printf("mode %o size %lld nlink %lu\n", st.st_mode, (long long)st.st_size,
           (unsigned long)st.st_nlink);
    char link[64], path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    printf("link: %s\n", link);
    char longname[300];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    report("long name", memfd_create(longname, 0));
    report("bad flags", memfd_create("x", 0x100));
    report("bad name pointer", syscall(SYS_memfd_create, (char *)8, 0));

    int *z = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
                  open("/dev/zero", O_RDWR), 0);
    pid = fork();
    if (pid == 0) {
        z[3] = 77;
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    printf("/dev/zero shared: %d\n", z[3]);

    char tmpl[] = "/tmp/pyv-memfd-ro-XXXXXX";
    int tfd = mkstemp(tmpl);
    ftruncate(tfd, 4096);
    int ro = open(tmpl, O_RDONLY);
    unlink(tmpl);
    int exe = open("/proc/self/exe", O_RDONLY);
    int wfd = memfd_create("ro", 0);
    ftruncate(wfd, 4096);
    snprintf(path, sizeof path, "/proc/self/fd/%d", wfd);
    (void)ro;
    char *r = mmap(NULL, 4096, PROT_READ, MAP_SHARED, wfd, 0);
    report("mprotect rw fd", mprotect(r, 4096, PROT_READ | PROT_WRITE));
    report("mmap shared rw of O_RDONLY fd", (long)mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                                                       MAP_SHARED, ro, 0));
    char *r2 = mmap(NULL, 4096, PROT_READ, MAP_SHARED, ro, 0);
    report("mprotect ro fd", mprotect(r2, 4096, PROT_READ | PROT_WRITE));
    char *r3 = mmap(NULL, 4096, PROT_READ, MAP_SHARED, exe, 0);
    report("mprotect ro fd of a lower file", mprotect(r3, 4096, PROT_READ | PROT_WRITE));
    return 0;
}
