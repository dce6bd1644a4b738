/* openat2(2) in a tree made under argv[1]: the open_how checks and each
 * RESOLVE_* restriction. For a successful open the first bytes of the file
 * are printed, so a test sees *which* file was opened. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int dfd;

static void put(const char *path, const char *text) {
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0 || write(fd, text, strlen(text)) < 0)
        exit(2);
    close(fd);
}

static void try_open(const char *what, int dirfd, const char *path, unsigned long long flags,
                     unsigned long long mode, unsigned long long resolve, size_t size) {
    char buf[4096] = {0};
    struct open_how *how = (struct open_how *)buf;
    how->flags = flags;
    how->mode = mode;
    how->resolve = resolve;
    long fd = syscall(SYS_openat2, dirfd, path, how, size);
    if (fd < 0) {
        printf("%s: %s\n", what, strerrorname_np(errno));
        return;
    }
    char data[32] = {0};
    ssize_t n = (flags & O_PATH) ? 0 : read((int)fd, data, sizeof data - 1);
    printf("%s: ok %s\n", what, n > 0 ? data : "-");
    close((int)fd);
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    if (chdir(argv[1]))
        return 2;
    mkdir("d", 0755);
    mkdir("d/sub", 0755);
    put("d/f", "inside");
    put("outside", "outside");
    symlink("f", "d/link_rel");
    symlink("../outside", "d/link_up");
    symlink("/f", "d/link_abs");
    symlink("sub/../f", "d/link_dots");
    dfd = open("d", O_DIRECTORY | O_RDONLY);
    size_t v0 = sizeof(struct open_how);

    try_open("plain", dfd, "f", O_RDONLY, 0, 0, v0);
    try_open("size 16", dfd, "f", O_RDONLY, 0, 0, 16);
    try_open("size 4097", dfd, "f", O_RDONLY, 0, 0, 4097);
    try_open("size 32 zero tail", dfd, "f", O_RDONLY, 0, 0, 32);
    {
        char buf[64] = {0};
        struct open_how *how = (struct open_how *)buf;
        buf[40] = 1;
        long r = syscall(SYS_openat2, dfd, "f", how, 48);
        printf("size 48 non-zero tail: %s\n", r < 0 ? strerrorname_np(errno) : "ok");
    }
    try_open("high flag bit", dfd, "f", 1ULL << 40, 0, 0, v0);
    try_open("unknown resolve bit", dfd, "f", O_RDONLY, 0, 0x40, v0);
    try_open("in_root with beneath", dfd, "f", O_RDONLY, 0, RESOLVE_IN_ROOT | RESOLVE_BENEATH,
             v0);
    try_open("mode without O_CREAT", dfd, "f", O_RDONLY, 0644, 0, v0);
    try_open("mode beyond 07777", dfd, "new", O_CREAT | O_WRONLY, 010000, 0, v0);
    try_open("O_PATH with O_RDWR", dfd, "f", O_PATH | O_RDWR, 0, 0, v0);
    try_open("cached with O_CREAT", dfd, "new", O_CREAT | O_WRONLY, 0644, RESOLVE_CACHED, v0);
    try_open("cached read", dfd, "f", O_RDONLY, 0, RESOLVE_CACHED, v0);
    {
        long r = syscall(SYS_openat2, dfd, "f", (void *)8, v0);
        printf("how at address 8: %s\n", r < 0 ? strerrorname_np(errno) : "ok");
    }

    try_open("beneath f", dfd, "f", O_RDONLY, 0, RESOLVE_BENEATH, v0);
    try_open("beneath sub/../f", dfd, "sub/../f", O_RDONLY, 0, RESOLVE_BENEATH, v0);
    try_open("beneath ../outside", dfd, "../outside", O_RDONLY, 0, RESOLVE_BENEATH, v0);
    try_open("beneath absolute", dfd, "/etc/hostname", O_RDONLY, 0, RESOLVE_BENEATH, v0);
    try_open("beneath link_up", dfd, "link_up", O_RDONLY, 0, RESOLVE_BENEATH, v0);
    try_open("beneath link_abs", dfd, "link_abs", O_RDONLY, 0, RESOLVE_BENEATH, v0);
    try_open("beneath link_dots", dfd, "link_dots", O_RDONLY, 0, RESOLVE_BENEATH, v0);
    try_open("beneath create", dfd, "created", O_CREAT | O_WRONLY, 0600, RESOLVE_BENEATH, v0);
    try_open("beneath create ../x", dfd, "../x", O_CREAT | O_WRONLY, 0600, RESOLVE_BENEATH, v0);

    try_open("in_root /f", dfd, "/f", O_RDONLY, 0, RESOLVE_IN_ROOT, v0);
    try_open("in_root ../../f", dfd, "../../f", O_RDONLY, 0, RESOLVE_IN_ROOT, v0);
    try_open("in_root link_abs", dfd, "link_abs", O_RDONLY, 0, RESOLVE_IN_ROOT, v0);
    try_open("in_root link_up", dfd, "link_up", O_RDONLY, 0, RESOLVE_IN_ROOT, v0);
    try_open("in_root /etc/hostname", dfd, "/etc/hostname", O_RDONLY, 0, RESOLVE_IN_ROOT, v0);

    try_open("no_symlinks link_rel", dfd, "link_rel", O_RDONLY, 0, RESOLVE_NO_SYMLINKS, v0);
    try_open("no_symlinks link_rel O_PATH|O_NOFOLLOW", dfd, "link_rel",
             O_PATH | O_NOFOLLOW, 0, RESOLVE_NO_SYMLINKS, v0);
    try_open("no_symlinks f", dfd, "f", O_RDONLY, 0, RESOLVE_NO_SYMLINKS, v0);
    try_open("symlink followed", dfd, "link_rel", O_RDONLY, 0, 0, v0);

    char fdpath[64];
    int ffd = openat(dfd, "f", O_RDONLY);
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", ffd);
    try_open("magic link", AT_FDCWD, fdpath, O_RDONLY, 0, 0, v0);
    try_open("no_magiclinks magic link", AT_FDCWD, fdpath, O_RDONLY, 0, RESOLVE_NO_MAGICLINKS,
             v0);
    try_open("no_magiclinks /proc/self/status", AT_FDCWD, "/proc/self/status", O_RDONLY, 0,
             RESOLVE_NO_MAGICLINKS, v0);
    try_open("no_xdev f", dfd, "f", O_RDONLY, 0, RESOLVE_NO_XDEV, v0);
    try_open("no_xdev /proc/self/status", dfd, "/proc/self/status", O_RDONLY, 0,
             RESOLVE_NO_XDEV, v0);
    try_open("no_xdev /proc/self/status from /proc", open("/proc", O_DIRECTORY),
             "self/status", O_RDONLY, 0, RESOLVE_NO_XDEV, v0);
    try_open("not a directory", ffd, "x", O_RDONLY, 0, 0, v0);
    try_open("bad fd", 999, "x", O_RDONLY, 0, 0, v0);
    return 0;
}
