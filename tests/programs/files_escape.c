/* Attempts to leave the root with raw path syscalls: "..", absolute and
 * relative symlinks, symlinked directories, dirfd-relative opens, chdir
 * loops. Run it with a small tree as its root (tests/test_rootfs_escape.py
 * builds one; natively under chroot, in the sandbox with --root): everything
 * it prints must come from inside that tree. Prints results and errno names
 * only, never inode numbers, times or addresses. */
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

static const char *kind(mode_t mode) {
    if (S_ISREG(mode))
        return "file";
    if (S_ISDIR(mode))
        return "dir";
    if (S_ISLNK(mode))
        return "symlink";
    return "other";
}

/* Read up to 200 bytes from an open fd and print them on one line. */
static void dump_fd(const char *label, int fd) {
    char buf[201];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n < 0) {
        printf("%s: read -1 %s\n", label, strerrorname_np(errno));
        return;
    }
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == '\n')
            buf[i] = '|';
    buf[n] = '\0';
    printf("%s: [%s]\n", label, buf);
}

static void list_dir(const char *label, int fd) {
    DIR *dir = fdopendir(fd);
    if (dir == NULL) {
        printf("%s: fdopendir -1 %s\n", label, strerrorname_np(errno));
        close(fd);
        return;
    }
    char names[64][NAME_MAX + 1];
    int count = 0;
    struct dirent *d;
    while ((d = readdir(dir)) != NULL && count < 64) {
        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
            continue;
        snprintf(names[count++], sizeof names[0], "%s", d->d_name);
    }
    closedir(dir);
    qsort(names, count, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    printf("%s: list", label);
    for (int i = 0; i < count; i++)
        printf(" %s", names[i]);
    printf("\n");
}

/* openat(dirfd, path) and show what came back: a file's bytes or a
 * directory's names. */
static void probe_at(int dirfd, const char *dirname, const char *path) {
    char label[PATH_MAX + 64];
    snprintf(label, sizeof label, "openat(%s, \"%s\")", dirname, path);
    int fd = openat(dirfd, path, O_RDONLY);
    if (fd < 0) {
        printf("%s: -1 %s\n", label, strerrorname_np(errno));
        return;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        list_dir(label, fd);
        return;
    }
    dump_fd(label, fd);
    close(fd);
}

static void probe(const char *path) {
    probe_at(AT_FDCWD, "AT_FDCWD", path);
}

static void describe_link(const char *path) {
    char target[PATH_MAX];
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n < 0)
        printf("readlink %s: -1 %s\n", path, strerrorname_np(errno));
    else
        printf("readlink %s: %.*s\n", path, (int)n, target);
    struct stat st;
    if (lstat(path, &st) < 0)
        printf("lstat %s: -1 %s\n", path, strerrorname_np(errno));
    else
        printf("lstat %s: %s\n", path, kind(st.st_mode));
    if (stat(path, &st) < 0)
        printf("stat %s: -1 %s\n", path, strerrorname_np(errno));
    else if (S_ISDIR(st.st_mode))
        printf("stat %s: dir\n", path);
    else
        printf("stat %s: %s size %lld\n", path, kind(st.st_mode), (long long)st.st_size);
    probe(path);
}

static void show_cwd(const char *label) {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL)
        printf("%s: getcwd -1 %s\n", label, strerrorname_np(errno));
    else
        printf("%s: %s\n", label, cwd);
}

static const char *const LINKS[] = {
    "/links/abs_shadow", "/links/abs_root", "/links/abs_slash", "/links/rel_passwd",
    "/links/rel_deep", "/links/out_dir", "/links/out_dir_rel", "/links/host_path",
    "/links/dotdot_chain",
};

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);

    /* Raw ".." above the root. */
    probe("/etc/shadow");
    probe("/../../etc/shadow");
    probe("/../../../../../../../../../../etc/hostname");
    probe("/a/b/../../../../etc/hostname");
    probe("..");
    probe("/..");

    /* dirfd-relative "..". */
    int etc = open("/etc", O_RDONLY | O_DIRECTORY);
    probe_at(etc, "/etc", "../../../../etc/hostname");
    probe_at(etc, "/etc", "../../../..");
    close(etc);
    int deep = open("/a/b", O_RDONLY | O_DIRECTORY);
    probe_at(deep, "/a/b", "../../../../../etc/shadow");
    probe_at(deep, "/a/b", "/etc/hostname");
    close(deep);
    int root = open("/", O_RDONLY | O_DIRECTORY);
    probe_at(root, "/", "..");
    probe_at(root, "/", "../etc/passwd");
    close(root);

    /* Every symlink the tree holds, and paths through them. */
    for (size_t i = 0; i < sizeof LINKS / sizeof LINKS[0]; i++)
        describe_link(LINKS[i]);
    probe("/links/out_dir/shadow");
    probe("/links/out_dir/../etc/shadow");
    probe("/links/out_dir_rel/hostname");
    probe("/links/abs_slash/etc/shadow");
    probe("/links/abs_slash/../../etc/shadow");
    probe("/links/dotdot_chain/etc/hostname");
    probe("/links/abs_root/marker");
    int links = open("/links", O_RDONLY | O_DIRECTORY);
    probe_at(links, "/links", "rel_passwd");
    probe_at(links, "/links", "out_dir_rel/shadow");
    close(links);

    /* A symlink made now, pointing up and out, resolves inside too. */
    printf("symlink made: %d\n", symlink("../../../../../../etc/shadow", "/a/made"));
    probe("/a/made");
    unlink("/a/made");

    /* chdir(..) as far as it goes. */
    if (chdir("/a/b") < 0)
        printf("chdir /a/b: %s\n", strerrorname_np(errno));
    show_cwd("cwd /a/b");
    for (int i = 0; i < 10; i++)
        if (chdir("..") < 0)
            printf("chdir ..: %s\n", strerrorname_np(errno));
    show_cwd("cwd after 10 x ..");
    probe("etc/hostname");
    probe("../../etc/shadow");
    if (chdir("/links/out_dir") < 0)
        printf("chdir /links/out_dir: %s\n", strerrorname_np(errno));
    show_cwd("cwd via out_dir");
    for (int i = 0; i < 5; i++)
        if (chdir("..") < 0)
            printf("chdir ..: %s\n", strerrorname_np(errno));
    show_cwd("cwd via out_dir then 5 x ..");
    int here = open(".", O_RDONLY | O_DIRECTORY);
    list_dir("list of cwd", here);
    return 0;
}
