/* A batch of calls with their errnos: utime/utimes/futimesat, the old
 * getdents, preadv/pwritev and their 2 forms (offset -1, RWF_APPEND, bad
 * flags), readahead, fadvise64, sync_file_range, personality, membarrier,
 * syslog's non-reading actions, sethostname/setdomainname (run natively in a
 * new UTS namespace) and get_robust_list. Usage: misc_calls DIR */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <utime.h>

static void report(const char *what, long ret) {
    printf("%s: %ld %s\n", what, ret, ret < 0 ? strerrorname_np(errno) : "-");
    fflush(stdout);
}

static void times_of(const char *path) {
    struct stat st;
    stat(path, &st);
    printf("  atime %ld.%09ld mtime %ld.%09ld\n", (long)st.st_atim.tv_sec, st.st_atim.tv_nsec,
           (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    char path[4200], dir[4096];
    snprintf(dir, sizeof dir, "%s/d", argv[1]);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/f", dir);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);

    report("utime", utime(path, &(struct utimbuf){1000, 2000}));
    times_of(path);
    struct timeval tv[2] = {{3000, 5}, {4000, 999999}};
    report("utimes", utimes(path, tv));
    times_of(path);
    tv[1].tv_usec = 1000000;
    report("utimes bad usec", utimes(path, tv));
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    tv[1].tv_usec = 7;
    report("futimesat", syscall(SYS_futimesat, dfd, "f", tv));
    times_of(path);
    report("utime missing", utime("/nonexistent/x", NULL));

    char buf[4096];
    long n = syscall(SYS_getdents, dfd, buf, sizeof buf);
    report("getdents", n);
    char lines[8][300];
    int count = 0;
    for (long off = 0; off < n && count < 8;) {  /* order is the filesystem's: sort */
        unsigned short reclen = *(unsigned short *)(buf + off + 16);
        char *name = buf + off + 18;
        unsigned char type = buf[off + reclen - 1];
        snprintf(lines[count++], sizeof lines[0], "  %s type %u reclen ok %d", name, type,
                 reclen % 8 == 0);
        off += reclen;
    }
    qsort(lines, count, sizeof lines[0], (int (*)(const void *, const void *))strcmp);
    for (int i = 0; i < count; i++)
        printf("%s\n", lines[i]);
    report("getdents too small", syscall(SYS_getdents, dfd, buf, 10));
    report("getdents not a dir", syscall(SYS_getdents, fd, buf, sizeof buf));

    struct iovec w[2] = {{"hello ", 6}, {"world", 5}};
    report("pwritev at 2", pwritev(fd, w, 2, 2));
    char a[8] = {0}, b[8] = {0};
    struct iovec r[2] = {{a, 4}, {b, 8}};
    report("preadv at 0", preadv(fd, r, 2, 0));
    printf("  [%.4s] [%.8s]\n", a, b);
    report("preadv negative", preadv(fd, r, 2, -5));
    lseek(fd, 3, SEEK_SET);
    report("preadv2 at -1", preadv2(fd, r, 1, -1, 0));
    printf("  [%.4s] offset now %ld\n", a, (long)lseek(fd, 0, SEEK_CUR));
    report("preadv2 bad flags", preadv2(fd, r, 1, 0, 0x40000000));
    struct iovec t[1] = {{"!", 1}};
    report("pwritev2 append", pwritev2(fd, t, 1, 0, RWF_APPEND));
    struct stat st;
    fstat(fd, &st);
    printf("  size %ld\n", (long)st.st_size);

    int p[2];
    if (pipe(p) != 0)
        return 1;
    report("readahead", readahead(fd, 0, 100));
    report("readahead pipe", readahead(p[0], 0, 100));
    report("fadvise", posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL));
    report("fadvise bad", syscall(SYS_fadvise64, fd, 0, 0, 9));
    report("fadvise pipe", syscall(SYS_fadvise64, p[0], 0, 0, 0));
    report("sync_file_range", sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE));
    report("sync_file_range bad flags", sync_file_range(fd, 0, 0, 8));
    report("sync_file_range negative", sync_file_range(fd, -1, 0, 0));
    report("sync_file_range pipe", sync_file_range(p[0], 0, 0, 0));

    report("personality query", personality(0xffffffff));
    report("personality set", personality(ADDR_NO_RANDOMIZE));
    report("personality query", personality(0xffffffff));

    long q = syscall(SYS_membarrier, 0, 0, 0);
    printf("membarrier query has private expedited %d\n", q > 0 && (q & 24) == 24);
    report("membarrier unregistered", syscall(SYS_membarrier, 8, 0, 0));
    report("membarrier register", syscall(SYS_membarrier, 16, 0, 0));
    report("membarrier private", syscall(SYS_membarrier, 8, 0, 0));
    report("membarrier global", syscall(SYS_membarrier, 1, 0, 0));
    report("membarrier bad flags", syscall(SYS_membarrier, 0, 2, 0));

    report("syslog open", syscall(SYS_syslog, 1, NULL, 0));
    report("syslog read_all len 0", syscall(SYS_syslog, 3, buf, 0));
    report("syslog read_all null", syscall(SYS_syslog, 3, NULL, 10));
    report("syslog bad action", syscall(SYS_syslog, 99, buf, 10));
    report("syslog console level 9", syscall(SYS_syslog, 8, NULL, 9));
    printf("syslog size positive %d\n", syscall(SYS_syslog, 10, NULL, 0) > 0);

    report("sethostname", sethostname("sandboxed-host", 14));
    report("sethostname too long", sethostname(buf, 65));
    report("setdomainname", setdomainname("example.test", 12));
    struct utsname u;
    uname(&u);
    printf("nodename %s domain %s\n", u.nodename, u.domainname);

    void *head;
    size_t len;
    report("get_robust_list self", syscall(SYS_get_robust_list, 0, &head, &len));
    printf("  head set %d len %zu\n", head != NULL, len);
    report("get_robust_list none", syscall(SYS_get_robust_list, 999999, &head, &len));
    unlink(path);
    rmdir(dir);
    return 0;
}
