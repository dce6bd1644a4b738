/* memfd sealing: F_GET_SEALS/F_ADD_SEALS and what each seal refuses (write,
   grow, shrink, writable shared mappings, more seals), EBUSY while a writable
   shared mapping exists, and a memfd made without MFD_ALLOW_SEALING. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void report(const char *what, long r) {
    printf("%s: %ld %s\n", what, r, r < 0 ? strerror(errno) : "ok");
}

int main(void) {
    int fd = memfd_create("sealed", MFD_ALLOW_SEALING);
    report("write", write(fd, "hello world", 11));
    report("get seals", fcntl(fd, F_GET_SEALS));
    void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    report("seal write while mapped writable", fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE));
    munmap(m, 4096);
    report("seal shrink|grow", fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW));
    report("truncate smaller", ftruncate(fd, 5));
    report("truncate larger", ftruncate(fd, 100));
    report("write past end", pwrite(fd, "xx", 2, 10));
    report("write inside", pwrite(fd, "HE", 2, 0));
    report("seal write", fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE));
    report("write sealed", pwrite(fd, "he", 2, 0));
    report("mmap shared writable", (long)mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    char *r = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    report("mmap shared read-only", r == MAP_FAILED ? -1 : 0);
    printf("contents: %.11s\n", r);
    report("mprotect it writable", mprotect(r, 4096, PROT_READ | PROT_WRITE));
    char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    report("mmap private writable", p == MAP_FAILED ? -1 : 0);
    report("seal seal", fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL));
    report("seal after seal", fcntl(fd, F_ADD_SEALS, F_SEAL_GROW));
    report("get seals", fcntl(fd, F_GET_SEALS));
    report("bad seal bits", fcntl(memfd_create("b", MFD_ALLOW_SEALING), F_ADD_SEALS, 0x1000));
    int plain = memfd_create("plain", 0);
    report("plain get seals", fcntl(plain, F_GET_SEALS));
    report("plain add seals", fcntl(plain, F_ADD_SEALS, F_SEAL_WRITE));
    report("pipe get seals", fcntl(0, F_GET_SEALS));
    return 0;
}
