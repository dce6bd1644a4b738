/* Memory-call semantics the LTP checks: mmap's errno order for a file
   mapping, mprotect of a read-only shared device mapping, MAP_LOCKED and
   MAP_POPULATE (VmLck, resident pages), msync MS_INVALIDATE of locked pages,
   mlock2 MLOCK_ONFAULT, and the madvise refusals on locked and file-backed
   mappings. Argument: a scratch directory. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static long P;

static void report(const char *what, long r) {
    printf("%s: %s\n", what, r < 0 ? strerrorname_np(errno) : "ok");
}

static void map_report(const char *what, void *m) {
    report(what, m == MAP_FAILED ? -1 : 0);
}

static int resident(char *m, int pages) {
    unsigned char vec[64];
    int n = 0;
    if (mincore(m, pages * P, vec)) return -1;
    for (int i = 0; i < pages; i++) n += vec[i] & 1;
    return n;
}

static long vmlck(void) {
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmLck: %ld", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}

int main(int argc, char **argv) {
    P = sysconf(_SC_PAGESIZE);
    if (argc < 2 || chdir(argv[1])) return 2;
    char buf[4096];
    memset(buf, 'a', sizeof buf);
    int wfd = open("f", O_WRONLY | O_CREAT, 0644);
    write(wfd, buf, sizeof buf);
    map_report("mmap write-only fd, length 0", mmap(NULL, 0, PROT_READ, MAP_SHARED, wfd, 0));
    map_report("mmap write-only fd, no type", mmap(NULL, P, PROT_READ, 0, wfd, 0));
    map_report("mmap write-only fd, private", mmap(NULL, P, PROT_READ, MAP_PRIVATE, wfd, 0));

    int zfd = open("/dev/zero", O_RDONLY);
    char *z = mmap(NULL, P, PROT_READ, MAP_SHARED, zfd, 0);
    report("mprotect write of read-only /dev/zero", mprotect(z, P, PROT_WRITE));

    long before = vmlck();
    char *l = mmap(NULL, 4 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED,
                   -1, 0);
    printf("MAP_LOCKED: VmLck +%ld kB, resident %d\n", vmlck() - before, resident(l, 4));
    report("msync MS_INVALIDATE locked", msync(l, P, MS_INVALIDATE));
    report("madvise DONTNEED locked", madvise(l, P, MADV_DONTNEED));
    report("madvise DONTNEED_LOCKED locked", madvise(l, P, 24 /* MADV_DONTNEED_LOCKED */));
    char *pp = mmap(NULL, 3 * P, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    printf("MAP_POPULATE: resident %d\n", resident(pp, 3));
    char *a = mmap(NULL, 4 * P, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    a[0] = 1;
    report("mlock2 ONFAULT", syscall(SYS_mlock2, a, 4 * P, 1));
    printf("ONFAULT: resident %d\n", resident(a, 4));
    munlock(a, 4 * P);
    report("mlock", mlock(a, 4 * P));
    printf("mlock: resident %d\n", resident(a, 4));

    int fd = open("g", O_RDWR | O_CREAT, 0644);
    write(fd, buf, sizeof buf);
    char *s = mmap(NULL, P, PROT_READ, MAP_SHARED, fd, 0);
    char *pv = mmap(NULL, P, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    mlock(s, P);
    report("madvise REMOVE locked shared", madvise(s, P, MADV_REMOVE));
    report("madvise DONTNEED locked shared", madvise(s, P, MADV_DONTNEED));
    report("madvise WIPEONFORK private file", madvise(pv, P, MADV_WIPEONFORK));
    report("madvise WIPEONFORK private anon", madvise(pp, P, MADV_WIPEONFORK));

    /* A big shared file mapping grown and moved by mremap, then written. */
    long big = 1000 * P;
    int h = open("h", O_RDWR | O_CREAT, 0644);
    pwrite(h, "", 1, big);  /* the last page first: the file's pages in two runs here */
    char *m = mmap(NULL, big, PROT_WRITE, MAP_SHARED, h, 0);
    ftruncate(h, 2 * big);
    char *fill = mmap(m + big, P, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                      -1, 0);  /* no room to grow in place */
    char *r = mremap(m, big, 2 * big, MREMAP_MAYMOVE);
    map_report("mremap big shared file mapping", r);
    if (r != MAP_FAILED) {
        for (long i = 0; i < 2 * big; i += 4096) r[i] = (char)(i / 4096);
        report("msync", msync(r, 2 * big, MS_SYNC));
        char c;
        pread(h, &c, 1, 1500 * P);
        printf("file byte at page 1500: %d\n", c == (char)1500);
        munmap(r, 2 * big);
    }
    if (fill != MAP_FAILED) munmap(fill, P);
    return 0;
}
