/* File syscalls in a scratch directory (argv[1], which must exist and be
 * empty): every line printed is a result or an errno name, never an address,
 * a time or an inode number, so a native run and a sandboxed run must print
 * the same thing. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void report(const char *what, long rc) {
    if (rc < 0)
        printf("%s = -1 %s\n", what, strerrorname_np(errno));
    else
        printf("%s = %ld\n", what, rc);
}

static void put_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        printf("put_file %s: %s\n", path, strerrorname_np(errno));
        exit(2);
    }
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        printf("put_file %s: short write\n", path);
        exit(2);
    }
    close(fd);
}

static void show_file(const char *label, const char *path) {
    char buf[256];
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("%s: open -1 %s\n", label, strerrorname_np(errno));
        return;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0) {
        printf("%s: read -1 %s\n", label, strerrorname_np(errno));
        return;
    }
    buf[n] = '\0';
    printf("%s: %zd [%s]\n", label, n, buf);
}

static void show_stat(const char *label, const char *path) {
    struct stat st;
    if (lstat(path, &st) < 0) {
        printf("%s: lstat -1 %s\n", label, strerrorname_np(errno));
        return;
    }
    /* A directory's st_size is filesystem-specific (4096 on ext4, 0 on an
     * in-memory overlay): print it for other file types only. */
    long long size = S_ISDIR(st.st_mode) ? -1 : (long long)st.st_size;
    printf("%s: mode %o nlink %lu size %lld\n", label, (unsigned)st.st_mode,
           (unsigned long)st.st_nlink, size);
}

static int count_dirents(const char *path) {
    char buf[1024];
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int count = 0;
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (n < 0) {
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        for (long off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            count++;
            off += d->d_reclen;
        }
    }
    close(fd);
    return count;
}

static void print_cwd(const char *label, const char *base) {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL) {
        printf("%s: getcwd -1 %s\n", label, strerrorname_np(errno));
        return;
    }
    size_t len = strlen(base);
    if (strncmp(cwd, base, len) == 0)
        printf("%s: BASE%s\n", label, cwd + len);
    else
        printf("%s: outside base: %s\n", label, cwd);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
        return 2;
    }
    char base[PATH_MAX];
    if (realpath(argv[1], base) == NULL) {
        printf("realpath: %s\n", strerrorname_np(errno));
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    umask(022);
    report("chdir scratch", chdir(base));
    print_cwd("cwd", base);

    /* openat, O_CREAT|O_EXCL, O_DIRECTORY, mode bits */
    int dfd = open(".", O_RDONLY | O_DIRECTORY);
    report("open . O_DIRECTORY ok", dfd >= 0 ? 0 : -1);
    int fd = openat(dfd, "a", O_RDWR | O_CREAT | O_EXCL, 0666);
    report("openat a O_CREAT|O_EXCL ok", fd >= 0 ? 0 : -1);
    report("write a", write(fd, "0123456789", 10));
    report("openat a O_CREAT|O_EXCL again", openat(dfd, "a", O_RDWR | O_CREAT | O_EXCL, 0666));
    report("open a O_DIRECTORY", open("a", O_RDONLY | O_DIRECTORY));
    report("open missing", open("missing", O_RDONLY));
    report("open a/ (trailing slash)", open("a/", O_RDONLY));
    report("open missing/x O_CREAT", open("missing/x", O_WRONLY | O_CREAT, 0644));
    report("open a/x O_CREAT", open("a/x", O_WRONLY | O_CREAT, 0644));
    show_stat("stat a", "a");

    /* fstat vs stat */
    struct stat st1, st2;
    report("fstat a", fstat(fd, &st1));
    report("stat a", stat("a", &st2));
    printf("fstat==stat: ino %d dev %d size %d mode %d nlink %d\n", st1.st_ino == st2.st_ino,
           st1.st_dev == st2.st_dev, st1.st_size == st2.st_size, st1.st_mode == st2.st_mode,
           st1.st_nlink == st2.st_nlink);

    /* lseek, pread, pwrite, O_APPEND, ftruncate */
    report("lseek SEEK_CUR", lseek(fd, 0, SEEK_CUR));
    report("lseek SEEK_END", lseek(fd, 0, SEEK_END));
    report("lseek SEEK_END -3", lseek(fd, -3, SEEK_END));
    report("lseek SEEK_SET -1", lseek(fd, -1, SEEK_SET));
    report("lseek SEEK_DATA 0", lseek(fd, 0, SEEK_DATA));
    report("lseek SEEK_DATA past end", lseek(fd, 100, SEEK_DATA));
    report("lseek SEEK_HOLE 0", lseek(fd, 0, SEEK_HOLE));
    report("lseek SEEK_SET 2", lseek(fd, 2, SEEK_SET));
    char buf[256];
    ssize_t n = pread(fd, buf, 4, 5);
    report("pread 4@5", n);
    if (n > 0)
        printf("pread data [%.*s]\n", (int)n, buf);
    report("offset after pread", lseek(fd, 0, SEEK_CUR));
    report("pwrite 3@20", pwrite(fd, "XYZ", 3, 20));
    report("offset after pwrite", lseek(fd, 0, SEEK_CUR));
    report("fstat size", fstat(fd, &st1) == 0 ? (long)st1.st_size : -1);
    n = pread(fd, buf, sizeof buf, 8);
    report("pread hole", n);
    for (ssize_t i = 0; i < n; i++)
        printf("%02x", (unsigned char)buf[i]);
    printf("\n");
    report("ftruncate 4", ftruncate(fd, 4));
    report("size after shrink", fstat(fd, &st1) == 0 ? (long)st1.st_size : -1);
    report("ftruncate 8", ftruncate(fd, 8));
    n = pread(fd, buf, sizeof buf, 0);
    report("pread after grow", n);
    for (ssize_t i = 0; i < n; i++)
        printf("%02x", (unsigned char)buf[i]);
    printf("\n");
    report("ftruncate -1", ftruncate(fd, -1));
    close(fd);
    int afd = open("a", O_WRONLY | O_APPEND);
    report("lseek 0 on O_APPEND", lseek(afd, 0, SEEK_SET));
    report("write O_APPEND", write(afd, "END", 3));
    report("offset after append", lseek(afd, 0, SEEK_CUR));
    report("read on O_WRONLY", read(afd, buf, 1));
    close(afd);
    int rfd = open("a", O_RDONLY);
    report("write on O_RDONLY", write(rfd, "x", 1));
    report("ftruncate on O_RDONLY", ftruncate(rfd, 0));
    close(rfd);
    report("truncate path 5", truncate("a", 5));
    show_file("a after truncate", "a");

    /* directories: mkdir, rmdir, unlink, nlink */
    report("mkdir d", mkdir("d", 0755));
    report("mkdir d again", mkdir("d", 0755));
    report("mkdir d/sub", mkdir("d/sub", 0700));
    report("mkdir d/sub2", mkdir("d/sub2", 0755));
    show_stat("stat d", "d");
    show_stat("stat d/sub", "d/sub");
    report("unlink d", unlink("d"));
    report("rmdir d (not empty)", rmdir("d"));
    report("rmdir a (file)", rmdir("a"));
    report("rmdir d/sub2", rmdir("d/sub2"));
    report("rmdir d/sub2 again", rmdir("d/sub2"));
    show_stat("stat d after rmdir", "d");
    int ddfd = open("d", O_RDONLY);
    report("read on a directory", read(ddfd, buf, 1));
    close(ddfd);
    report("open d O_WRONLY", open("d", O_WRONLY));
    report("mkdir a/x (parent is a file)", mkdir("a/x", 0755));
    report("unlinkat d/sub AT_REMOVEDIR", unlinkat(AT_FDCWD, "d/sub", AT_REMOVEDIR));
    report("unlinkat a AT_REMOVEDIR", unlinkat(AT_FDCWD, "a", AT_REMOVEDIR));

    /* getdents64 */
    report("mkdir many", mkdir("many", 0755));
    for (int i = 0; i < 150; i++) {
        char name[64];
        snprintf(name, sizeof name, "many/entry-with-a-longish-name-%03d", i);
        put_file(name, "x");
    }
    report("getdents64 count many", count_dirents("many"));
    report("getdents64 count d", count_dirents("d"));
    report("getdents64 on a file", count_dirents("a"));

    /* link, rename */
    put_file("b", "bee");
    report("link b c", link("b", "c"));
    show_stat("stat b after link", "b");
    report("link b c again", link("b", "c"));
    report("link d dlink (directory)", link("d", "dlink"));
    report("unlink c", unlink("c"));
    show_stat("stat b after unlink c", "b");
    put_file("r1", "first");
    put_file("r2", "second");
    report("rename r1 r2", rename("r1", "r2"));
    show_file("r2 after rename", "r2");
    show_file("r1 after rename", "r1");
    report("rename missing r2", rename("missing", "r2"));
    report("rename r2 d (file over dir)", rename("r2", "d"));
    report("mkdir e", mkdir("e", 0755));
    report("rename e r2 (dir over file)", rename("e", "r2"));
    put_file("d/inside", "in");
    report("rename e d (dir over non-empty dir)", rename("e", "d"));
    report("mkdir f", mkdir("f", 0755));
    report("rename e f (dir over empty dir)", rename("e", "f"));
    show_stat("stat e after rename", "e");
    show_stat("stat f after rename", "f");
    report("rename d d/inner (into itself)", rename("d", "d/inner"));
    report("rename d d2", rename("d", "d2"));
    show_file("d2/inside", "d2/inside");
    put_file("n1", "one");
    report("renameat2 NOREPLACE", syscall(SYS_renameat2, AT_FDCWD, "n1", AT_FDCWD, "r2", 1));

    /* access */
    report("access b F_OK", access("b", F_OK));
    report("access b R_OK|W_OK", access("b", R_OK | W_OK));
    report("access b X_OK", access("b", X_OK));
    report("chmod b 0755", chmod("b", 0755));
    report("access b X_OK after chmod", access("b", X_OK));
    show_stat("stat b after chmod", "b");
    report("access missing", access("missing", F_OK));
    report("access b/x", access("b/x", F_OK));

    /* symlinks, readlink */
    report("symlink b sl", symlink("b", "sl"));
    report("symlink b sl again", symlink("b", "sl"));
    ssize_t len = readlink("sl", buf, sizeof buf);
    report("readlink sl", len);
    if (len >= 0)
        printf("readlink sl -> [%.*s]\n", (int)len, buf);
    report("readlink sl size 1", readlink("sl", buf, 1));
    report("readlink b (file)", readlink("b", buf, sizeof buf));
    report("readlink missing", readlink("missing", buf, sizeof buf));
    show_stat("lstat sl", "sl");
    report("stat sl size", stat("sl", &st1) == 0 ? (long)st1.st_size : -1);
    show_file("cat sl", "sl");
    report("symlink missing dangling", symlink("missing", "dangling"));
    report("open dangling", open("dangling", O_RDONLY));
    report("open sl O_NOFOLLOW", open("sl", O_RDONLY | O_NOFOLLOW));
    int pfd = open("sl", O_PATH | O_NOFOLLOW);
    report("open sl O_PATH|O_NOFOLLOW ok", pfd >= 0 ? 0 : -1);
    close(pfd);
    report("unlink sl", unlink("sl"));
    show_file("b still there", "b");

    /* ELOOP on a 41-deep chain; 40 is still fine */
    put_file("t", "target");
    char prev[32] = "t", cur[32];
    for (int i = 1; i <= 41; i++) {
        snprintf(cur, sizeof cur, "chain%02d", i);
        if (symlink(prev, cur) < 0) {
            printf("symlink %s: %s\n", cur, strerrorname_np(errno));
            return 2;
        }
        strcpy(prev, cur);
    }
    show_file("open chain40", "chain40");
    show_file("open chain41", "chain41");
    report("stat chain41", stat("chain41", &st1));
    report("lstat chain41", lstat("chain41", &st1));
    report("symlink loop1 loop2", symlink("loop2", "loop1"));
    report("symlink loop2 loop1", symlink("loop1", "loop2"));
    report("open loop1", open("loop1", O_RDONLY));
    report("open loop1 O_CREAT", open("loop1", O_RDWR | O_CREAT, 0644));
    report("mkdir loop1/x", mkdir("loop1/x", 0755));

    /* ENAMETOOLONG */
    char longname[300];
    memset(longname, 'n', 256);
    longname[256] = '\0';
    report("open 256-char name", open(longname, O_RDONLY));
    report("mkdir 256-char name", mkdir(longname, 0755));
    longname[255] = '\0';
    int lfd = open(longname, O_WRONLY | O_CREAT, 0644);
    report("create 255-char name ok", lfd >= 0 ? 0 : -1);
    close(lfd);
    report("unlink 255-char name", unlink(longname));
    static char longpath[PATH_MAX + 64];
    size_t pos = 0;
    while (pos < PATH_MAX + 10) {
        memcpy(longpath + pos, "./", 2);
        pos += 2;
    }
    strcpy(longpath + pos, "b");
    report("open path > PATH_MAX", open(longpath, O_RDONLY));

    /* getcwd, chdir, fchdir */
    report("mkdir w", mkdir("w", 0755));
    report("mkdir w/x", mkdir("w/x", 0755));
    int here = open(".", O_RDONLY | O_DIRECTORY);
    report("chdir w/x", chdir("w/x"));
    print_cwd("cwd after chdir w/x", base);
    report("chdir ..", chdir(".."));
    print_cwd("cwd after chdir ..", base);
    report("chdir b (file)", chdir("b"));
    report("chdir missing", chdir("missing"));
    report("fchdir here", fchdir(here));
    print_cwd("cwd after fchdir", base);
    int bfd = open("b", O_RDONLY);
    report("fchdir on a file", fchdir(bfd));
    report("fchdir bad fd", fchdir(999));
    show_file("relative after fchdir", "b");
    report("chdir w/x again", chdir("w/x"));
    report("rmdir .", rmdir("."));
    report("chdir back", fchdir(here));
    close(here);

    /* dup2 / dup3 / fcntl */
    report("dup2 b -> 50", dup2(bfd, 50));
    report("F_GETFD 50", fcntl(50, F_GETFD));
    report("dup3 b -> 51 O_CLOEXEC", dup3(bfd, 51, O_CLOEXEC));
    report("F_GETFD 51", fcntl(51, F_GETFD));
    report("dup3 same fd", dup3(bfd, bfd, 0));
    report("dup2 same fd", dup2(bfd, bfd) == bfd ? 0 : -1);
    report("F_SETFD 50 cloexec", fcntl(50, F_SETFD, FD_CLOEXEC));
    report("F_GETFD 50 again", fcntl(50, F_GETFD));
    report("F_DUPFD_CLOEXEC >= 60", fcntl(bfd, F_DUPFD_CLOEXEC, 60));
    report("F_GETFD 60", fcntl(60, F_GETFD));
    report("F_GETFL b & O_ACCMODE", fcntl(bfd, F_GETFL) & O_ACCMODE);
    report("lseek 51 to 1", lseek(51, 1, SEEK_SET));
    report("shared offset on 50", lseek(50, 0, SEEK_CUR));
    report("dup2 bad fd", dup2(999, 52));
    report("F_GETFD closed fd", fcntl(52, F_GETFD));
    report("close 50", close(50));
    report("close 50 again", close(50));

    /* unlink of an open file: data stays readable */
    put_file("gone", "still here");
    int gfd = open("gone", O_RDONLY);
    report("unlink gone", unlink("gone"));
    n = read(gfd, buf, sizeof buf);
    report("read unlinked", n);
    if (n > 0)
        printf("unlinked data [%.*s]\n", (int)n, buf);
    report("fstat nlink of unlinked", fstat(gfd, &st1) == 0 ? (long)st1.st_nlink : -1);
    close(gfd);
    report("access gone", access("gone", F_OK));
    printf("done\n");
    return 0;
}
