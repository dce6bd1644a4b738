/* mincore (which pages were touched, its errors) and the mlock family's
   argument and range checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static void report(const char *what, long r) {
    printf("%s: %ld %s\n", what, r, r < 0 ? strerror(errno) : "ok");
}

int main(void) {
    long p = sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, 4 * p, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *s = mmap(NULL, 2 * p, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    unsigned char vec[4];
    m[p] = 1;
    m[3 * p + 5] = 1;
    s[p] = 1;
    report("mincore", mincore(m, 4 * p, vec));
    printf("private: %d %d %d %d\n", vec[0] & 1, vec[1] & 1, vec[2] & 1, vec[3] & 1);
    report("mincore shared", mincore(s, 2 * p - 100, vec));
    printf("shared: %d %d\n", vec[0] & 1, vec[1] & 1);
    report("mincore unaligned", mincore(m + 1, p, vec));
    munmap(m + 2 * p, p);
    report("mincore over a hole", mincore(m, 4 * p, vec));
    report("mincore bad vec", mincore(m, p, (unsigned char *)8));
    report("mlock", mlock(m + 10, p));
    report("munlock", munlock(m + 10, p));
    report("mlock over a hole", mlock(m, 4 * p));
    report("mlock2 bad flags", syscall(SYS_mlock2, m, p, 8));
    report("mlock2 onfault", syscall(SYS_mlock2, m, p, 1));
    report("mlockall 0", mlockall(0));
    report("mlockall onfault alone", mlockall(MCL_ONFAULT));
    report("mlockall current", mlockall(MCL_CURRENT));
    report("munlockall", munlockall());
    return 0;
}
