/* Memory resource limits as Linux enforces them: RLIMIT_MEMLOCK on mlock,
 * mlock2 and mlockall (and MCL_FUTURE on mmap), RLIMIT_AS on mmap and mremap,
 * RLIMIT_DATA on private writable mappings and brk, RLIMIT_NPROC at fork.
 * Limits are set relative to what /proc/self/status reports, so the sizes of
 * the runtime's own mappings do not matter. The checks run as an unprivileged
 * uid (no CAP_IPC_LOCK, no CAP_SYS_RESOURCE). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096L
#define MIB (1L << 20)

static void report(const char *what, long r) {
    if (r < 0)
        printf("%s: %s\n", what, strerrorname_np(errno));
    else
        printf("%s: ok\n", what);
    fflush(stdout);
}

static long status_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':')
            v = strtol(line + n + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* The soft limit; the hard one stays (root raised it before dropping). */
static void set(int res, rlim_t soft) {
    struct rlimit rl;
    getrlimit(res, &rl);
    rl.rlim_cur = soft;
    if (setrlimit(res, &rl))
        printf("setrlimit %d: %s\n", res, strerrorname_np(errno));
}

static long map(long len, int prot, int flags) {
    void *p = mmap(NULL, len, prot, flags | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    munmap(p, len);
    return 0;
}

static void memlock(void) {
    char *p = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    set(RLIMIT_MEMLOCK, 2 * PAGE);
    report("mlock 3 pages over a 2-page limit", mlock(p, 3 * PAGE));
    report("mlock 2 pages", mlock(p, 2 * PAGE));
    printf("VmLck %ld kB\n", status_kb("VmLck"));
    report("mlock the same 2 pages again", mlock(p, 2 * PAGE));
    report("mlock2 one more page", mlock2(p + 2 * PAGE, PAGE, 0));
    report("mlock2 bad flags", mlock2(p, PAGE, 8));
    report("munlock", munlock(p, 2 * PAGE));
    printf("VmLck %ld kB\n", status_kb("VmLck"));
    report("mlock unaligned 2 pages", mlock(p + 100, PAGE));
    report("munlockall", munlockall());
    report("mlockall current over the limit", mlockall(MCL_CURRENT));
    set(RLIMIT_MEMLOCK, 16 * PAGE);
    report("mlockall future", mlockall(MCL_FUTURE));
    report("mmap 32 pages locked", map(32 * PAGE, PROT_READ, MAP_PRIVATE));
    report("mmap 4 pages locked", map(4 * PAGE, PROT_READ, MAP_PRIVATE));
    report("munlockall", munlockall());
    report("mmap 32 pages unlocked", map(32 * PAGE, PROT_READ, MAP_PRIVATE));
    munmap(p, 8 * PAGE);
    report("mlock unmapped", mlock(p, PAGE));
    set(RLIMIT_MEMLOCK, 0);
    report("mlock with a zero limit", mlock(p, PAGE));
    report("mlockall with a zero limit", mlockall(MCL_CURRENT));
}

static void address_space(void) {
    long size = status_kb("VmSize") * 1024;
    set(RLIMIT_AS, size + 16 * MIB);
    report("mmap 64 MiB past RLIMIT_AS", map(64 * MIB, PROT_READ, MAP_PRIVATE));
    report("mmap 64 MiB shared past RLIMIT_AS", map(64 * MIB, PROT_READ | PROT_WRITE, MAP_SHARED));
    report("mmap 2 MiB", map(2 * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE));
    char *p = mmap(NULL, 2 * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *q = mremap(p, 2 * MIB, 64 * MIB, MREMAP_MAYMOVE);
    report("mremap to 64 MiB past RLIMIT_AS", q == MAP_FAILED ? -1 : 0);
    void *r = mmap(p, 2 * MIB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    report("MAP_FIXED over an existing mapping", r == MAP_FAILED ? -1 : 0);
    munmap(q == MAP_FAILED ? p : q, q == MAP_FAILED ? 2 * MIB : 64 * MIB);
    set(RLIMIT_AS, RLIM_INFINITY);
}

static void data(void) {
    long used = status_kb("VmData") * 1024;
    set(RLIMIT_DATA, used + 8 * MIB);
    report("mmap 32 MiB private writable past RLIMIT_DATA", map(32 * MIB, PROT_READ | PROT_WRITE,
                                                               MAP_PRIVATE));
    report("mmap 32 MiB read-only", map(32 * MIB, PROT_READ, MAP_PRIVATE));
    report("mmap 32 MiB shared writable", map(32 * MIB, PROT_READ | PROT_WRITE, MAP_SHARED));
    report("mmap 1 MiB private writable", map(MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE));
    void *b = sbrk(32 * MIB);
    report("sbrk 32 MiB past RLIMIT_DATA", b == (void *)-1 ? -1 : 0);
    b = sbrk(64 * 1024);
    report("sbrk 64 KiB", b == (void *)-1 ? -1 : 0);
    set(RLIMIT_DATA, 0);
    report("mmap 1 MiB with soft 0 under hard", map(MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE));
    set(RLIMIT_DATA, RLIM_INFINITY);
}

static void nproc(void) {
    set(RLIMIT_NPROC, 1);
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    report("fork at RLIMIT_NPROC 1", pid);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    set(RLIMIT_NPROC, 2);
    pid = fork();
    if (pid == 0)
        _exit(0);
    report("fork at RLIMIT_NPROC 2", pid);
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

int main(void) {
    /* As root first: CAP_IPC_LOCK and root's NPROC exemption. */
    struct rlimit big = {PAGE, 64 * MIB};
    setrlimit(RLIMIT_MEMLOCK, &big);
    char *p = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    report("root mlock 4 pages over a 1-page limit", mlock(p, 4 * PAGE));
    printf("VmLck %ld kB\n", status_kb("VmLck"));
    pid_t pid = fork();
    if (pid == 0) {
        printf("child VmLck %ld kB\n", status_kb("VmLck"));
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    munlock(p, 4 * PAGE);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        if (setgid(54321) || setuid(54321))
            _exit(3);
        memlock();
        address_space();
        data();
        nproc();
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("child: %d\n", WEXITSTATUS(status));
    return 0;
}
