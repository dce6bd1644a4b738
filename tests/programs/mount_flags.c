/* Per-mount flags against Linux, in a private mount namespace: statfs's
   f_flags (ST_VALID and the mount's nosuid/nodev/noexec/nosymfollow/
   noatime), and nosymfollow refusing to follow a symlink (ELOOP) while
   readlink still reads it. Argument: a scratch directory. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

static void report(const char *what, long r) {
    printf("%s: %s\n", what, r < 0 ? strerrorname_np(errno) : "ok");
}

int main(int argc, char **argv) {
    if (argc < 2 || chdir(argv[1])) return 2;
    if (unshare(CLONE_NEWNS) || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL)) return 3;
    mkdir("m", 0755);
    report("mount", mount("none", "m", "tmpfs",
                          MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOSYMFOLLOW | MS_NOATIME, NULL));
    struct statfs sf;
    statfs("m", &sf);
    printf("f_flags: %#lx\n", (unsigned long)sf.f_flags);
    close(open("m/file", O_CREAT | O_WRONLY, 0644));
    symlink("file", "m/link");
    report("open through a nosymfollow link", open("m/link", O_RDONLY));
    char buf[64];
    ssize_t n = readlink("m/link", buf, sizeof buf);
    printf("readlink: %.*s\n", (int)(n > 0 ? n : 0), buf);
    report("remount read-only", mount("none", "m", NULL, MS_REMOUNT | MS_RDONLY, NULL));
    statfs("m", &sf);
    printf("f_flags after remount: %#lx\n", (unsigned long)sf.f_flags);
    report("open through a link after remount", open("m/link", O_RDONLY));
    umount("m");
    return 0;
}
