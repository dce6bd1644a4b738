/* madvise on shared memory: MADV_DONTNEED keeps a shared mapping's contents
   (file or anonymous) and zeroes a private one; MADV_REMOVE punches the pages
   out of the file; MADV_FREE is for private memory only. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void report(const char *what, long r) {
    printf("%s: %ld %s\n", what, r, r < 0 ? strerror(errno) : "ok");
}

int main(void) {
    char path[] = "/tmp/pyv-madvise-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    ftruncate(fd, 2 * 4096);
    char *f = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *s = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    strcpy(f, "file page 0");
    strcpy(f + 4096, "file page 1");
    strcpy(s, "shared anon");
    strcpy(p, "private anon");
    report("dontneed file", madvise(f, 2 * 4096, MADV_DONTNEED));
    report("dontneed shared anon", madvise(s, 4096, MADV_DONTNEED));
    report("dontneed private", madvise(p, 4096, MADV_DONTNEED));
    printf("after dontneed: [%s] [%s] [%s]\n", f, s, p);
    report("remove file page 1", madvise(f + 4096, 4096, MADV_REMOVE));
    char buf[12] = {0};
    pread(fd, buf, 11, 4096);
    printf("page 1 via mapping [%s] via pread [%s]\n", f + 4096, buf);
    pread(fd, buf, 11, 0);
    printf("page 0 via pread [%s]\n", buf);
    report("free shared", madvise(s, 4096, MADV_FREE));
    report("remove private", madvise(p, 4096, MADV_REMOVE));
    return 0;
}
