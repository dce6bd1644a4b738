/* Ids, sizes and times at the edges of their Linux types.
 *
 *   large_ids ids DIR     chown, fchown, lchown, fchownat (also through raw
 *                         syscalls with 64-bit register values) to 2^31,
 *                         2^32-2 and (u32)-1, each followed by stat and a raw
 *                         statx; setgroups/getgroups with large ids and -1
 *   large_ids sizes DIR   ftruncate, pwrite and lseek at 2^40, 2^62, LLONG_MAX
 *   large_ids times DIR   utimensat to times before 1970, far in the future,
 *                         at the s64 limits, with bad nanoseconds
 *   large_ids stat PATH   stat and statx of one file (sizes and times)
 *
 * Every call prints its result or errno name, so a native run (on a tmpfs, as
 * the sandbox's /tmp is in memory) and a sandboxed one compare line by line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct kstatx_ts { int64_t tv_sec; uint32_t tv_nsec; int32_t pad; };
struct kstatx {
    uint32_t mask, blksize; uint64_t attributes; uint32_t nlink, uid, gid;
    uint16_t mode, pad1; uint64_t ino, size, blocks, attributes_mask;
    struct kstatx_ts atime, btime, ctime, mtime;
    uint32_t rdev_major, rdev_minor, dev_major, dev_minor;
    uint64_t spare[14];
};

static const char *ename(int e) {
    switch (e) {
    case 0: return "0";
    case EINVAL: return "EINVAL";
    case EPERM: return "EPERM";
    case EFBIG: return "EFBIG";
    case ENOENT: return "ENOENT";
    case EOVERFLOW: return "EOVERFLOW";
    case EBADF: return "EBADF";
    default: return strerror(e);
    }
}

static void result(const char *what, long r) {
    printf("%s = %ld%s%s\n", what, r, r < 0 ? " " : "", r < 0 ? ename(errno) : "");
}

static void show_ids(const char *path, int nofollow) {
    struct stat st;
    struct kstatx sx;
    memset(&sx, 0xAA, sizeof sx);
    int r = nofollow ? lstat(path, &st) : stat(path, &st);
    if (r != 0) {
        printf("  stat: %s\n", ename(errno));
        return;
    }
    long x = syscall(SYS_statx, AT_FDCWD, path, nofollow ? AT_SYMLINK_NOFOLLOW : 0, 0x7ff, &sx);
    printf("  stat uid=%u gid=%u", (unsigned)st.st_uid, (unsigned)st.st_gid);
    if (x != 0)
        printf("  statx: %s\n", ename(errno));
    else
        printf("  statx uid=%u gid=%u mask_basic=%d\n", sx.uid, sx.gid, (sx.mask & 0x7ff) == 0x7ff);
}

static void make(const char *path) {
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0) {
        perror(path);
        exit(1);
    }
    close(fd);
}

static const struct { long uid, gid; } PAIRS[] = {
    {0, 0},
    {0x80000000L, 0x80000000L},          /* 2^31 */
    {0xFFFFFFFEL, 0xFFFFFFFEL},          /* 2^32-2, the largest id */
    {-1, 0x80000005L},                   /* (u32)-1 leaves the uid alone */
    {0x80000007L, 0xFFFFFFFFL},          /* 0xFFFFFFFF is -1 too */
    {-1, -1},
    {0x100000005L, 0x7FFFFFFF00000006L}, /* only the low 32 bits count */
    {0xFFFFFFFEL, 0x80000000L},          /* left for ls -ln to show */
};

static void ids(const char *dir) {
    char f[4096], l[4096];
    const char *kinds[] = {"chown", "fchown", "lchown", "fchownat", "fchownat-nofollow",
                           "fchownat-empty", "raw-chown", "raw-fchown"};
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        snprintf(f, sizeof f, "%s/f-%s", dir, kinds[k]);
        snprintf(l, sizeof l, "%s/l-%s", dir, kinds[k]);
        make(f);
        if (symlink(strrchr(f, '/') + 1, l) != 0) /* relative: the same in any dir */
            perror("symlink");
        int link = !strcmp(kinds[k], "lchown") || !strcmp(kinds[k], "fchownat-nofollow");
        const char *target = link ? l : f;
        int fd = open(f, O_RDONLY);
        for (size_t i = 0; i < sizeof PAIRS / sizeof *PAIRS; i++) {
            uid_t u = (uid_t)PAIRS[i].uid;
            gid_t g = (gid_t)PAIRS[i].gid;
            long r;
            errno = 0;
            switch (k) {
            case 0: r = chown(target, u, g); break;
            case 1: r = fchown(fd, u, g); break;
            case 2: r = lchown(target, u, g); break;
            case 3: r = fchownat(AT_FDCWD, target, u, g, 0); break;
            case 4: r = fchownat(AT_FDCWD, target, u, g, AT_SYMLINK_NOFOLLOW); break;
            case 5: r = fchownat(fd, "", u, g, AT_EMPTY_PATH); break;
            case 6: r = syscall(SYS_chown, target, PAIRS[i].uid, PAIRS[i].gid); break;
            default: r = syscall(SYS_fchown, fd, PAIRS[i].uid, PAIRS[i].gid); break;
            }
            char what[128];
            snprintf(what, sizeof what, "%s(%#lx, %#lx)", kinds[k], PAIRS[i].uid, PAIRS[i].gid);
            result(what, r);
            show_ids(target, link);
        }
        close(fd);
    }
    errno = 0;
    result("fchownat(bad flags)", fchownat(AT_FDCWD, f, 1, 1, 0x8000));

    gid_t big[] = {0x80000000u, 0xFFFFFFFEu, 7};
    result("setgroups(2^31, 2^32-2, 7)", setgroups(3, big));
    gid_t got[8] = {0};
    int n = getgroups(8, got);
    printf("getgroups = %d:", n);
    for (int i = 0; i < n; i++)
        printf(" %u", (unsigned)got[i]);
    printf("\n");
    gid_t bad[] = {5, (gid_t)-1};
    errno = 0;
    result("setgroups(5, -1)", setgroups(2, bad));
    n = getgroups(8, got);
    printf("getgroups = %d\n", n);
}

static void show_size(int fd) {
    struct stat st;
    struct kstatx sx;
    fstat(fd, &st);
    syscall(SYS_statx, fd, "", AT_EMPTY_PATH, 0x7ff, &sx);
    printf("  size=%lld statx.size=%llu\n", (long long)st.st_size, (unsigned long long)sx.size);
}

static void sizes(const char *dir) {
    char f[4096];
    snprintf(f, sizeof f, "%s/sizes", dir);
    int fd = open(f, O_CREAT | O_RDWR | O_TRUNC, 0644);
    const long long lens[] = {1LL << 40, 1LL << 62, LLONG_MAX, -1, 5};
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        char what[64];
        errno = 0;
        snprintf(what, sizeof what, "ftruncate(%lld)", lens[i]);
        result(what, ftruncate(fd, lens[i]));
        show_size(fd);
    }
    errno = 0;
    result("pwrite(1 byte at 2^62)", pwrite(fd, "x", 1, 1LL << 62));
    show_size(fd);
    char c = 0, buf[16];
    result("pread(at 2^62)", pread(fd, &c, 1, 1LL << 62));
    printf("  byte=%c\n", c);
    errno = 0;
    result("pwrite(10 at LLONG_MAX-3)", pwrite(fd, "0123456789", 10, LLONG_MAX - 3));
    errno = 0;
    result("pwrite(2 at LLONG_MAX-1)", pwrite(fd, "01", 2, LLONG_MAX - 1));
    errno = 0;
    result("pread(10 at LLONG_MAX-3)", pread(fd, buf, 10, LLONG_MAX - 3));
    errno = 0;
    result("pwrite(at -1)", pwrite(fd, "x", 1, -1));
    show_size(fd);
    errno = 0;
    result("ftruncate(LLONG_MAX)", ftruncate(fd, LLONG_MAX));
    errno = 0;
    result("lseek(0, SEEK_END)", lseek(fd, 0, SEEK_END));
    errno = 0;
    result("lseek(1, SEEK_END)", lseek(fd, 1, SEEK_END));
    errno = 0;
    result("lseek(LLONG_MAX, SEEK_SET)", lseek(fd, LLONG_MAX, SEEK_SET));
    errno = 0;
    result("lseek(1, SEEK_CUR)", lseek(fd, 1, SEEK_CUR));
    errno = 0;
    result("write(1) at LLONG_MAX", write(fd, "x", 1));
    errno = 0;
    result("lseek(LLONG_MAX-1, SEEK_SET)", lseek(fd, LLONG_MAX - 1, SEEK_SET));
    errno = 0;
    result("write(3) at LLONG_MAX-1", write(fd, "abc", 3));
    show_size(fd);
    close(fd);
}

static void show_times(const char *path) {
    struct stat st;
    struct kstatx sx;
    if (stat(path, &st) != 0) {
        printf("  stat: %s\n", ename(errno));
        return;
    }
    long x = syscall(SYS_statx, AT_FDCWD, path, 0, 0x7ff, &sx);
    printf("  stat atime=%lld.%09ld mtime=%lld.%09ld\n", (long long)st.st_atim.tv_sec,
           st.st_atim.tv_nsec, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    if (x == 0)
        printf("  statx atime=%lld.%09u mtime=%lld.%09u\n", (long long)sx.atime.tv_sec,
               sx.atime.tv_nsec, (long long)sx.mtime.tv_sec, sx.mtime.tv_nsec);
    else
        printf("  statx: %s\n", ename(errno));
}

static void times_(const char *dir) {
    char f[4096];
    snprintf(f, sizeof f, "%s/times", dir);
    make(f);
    const struct timespec cases[][2] = {
        {{-1, 5}, {-1, 999999999}},
        {{-(1LL << 40), 1}, {(1LL << 40), 2}},
        {{-2147483648LL, 0}, {2147483647LL, 3}},
        {{1LL << 34, 4}, {(1LL << 34) + 1, 5}},
        {{LLONG_MAX, 7}, {LLONG_MIN, 8}},
        {{LLONG_MAX - 1, 7}, {LLONG_MIN + 1, 8}},
        {{5, UTIME_OMIT}, {-6, 9}},
        {{5, 1000000000}, {0, 0}},
        {{5, -1}, {0, 0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char what[160];
        snprintf(what, sizeof what, "utimensat(%lld.%ld, %lld.%ld)",
                 (long long)cases[i][0].tv_sec, cases[i][0].tv_nsec,
                 (long long)cases[i][1].tv_sec, cases[i][1].tv_nsec);
        errno = 0;
        result(what, utimensat(AT_FDCWD, f, cases[i], 0));
        show_times(f);
    }
}

static void stat_one(const char *path) {
    struct stat st;
    struct kstatx sx;
    if (stat(path, &st) != 0) {
        printf("stat: %s\n", ename(errno));
        return;
    }
    printf("size=%lld uid=%u gid=%u\n", (long long)st.st_size, (unsigned)st.st_uid,
           (unsigned)st.st_gid);
    long x = syscall(SYS_statx, AT_FDCWD, path, 0, 0x7ff, &sx);
    if (x != 0)
        printf("statx: %s\n", ename(errno));
    else
        printf("statx size=%llu uid=%u gid=%u\n", (unsigned long long)sx.size, sx.uid, sx.gid);
    show_times(path);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc != 3) {
        fprintf(stderr, "usage: %s ids|sizes|times|stat DIR\n", argv[0]);
        return 2;
    }
    if (!strcmp(argv[1], "ids"))
        ids(argv[2]);
    else if (!strcmp(argv[1], "sizes"))
        sizes(argv[2]);
    else if (!strcmp(argv[1], "times"))
        times_(argv[2]);
    else if (!strcmp(argv[1], "stat"))
        stat_one(argv[2]);
    else
        return 2;
    return 0;
}
