/* After dropping root to nobody (uid/gid 65534, as setpriv or trinity's -X
 * do), a process can still list its own /proc/<pid>/fd and /proc/self/fd
 * (mode 0500, owned by its effective uid).  Trinity crashed in the sandbox
 * when opendir of its own fd directory failed with EACCES. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void try(const char *what, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        printf("%s: stat %s\n", what, strerror(errno));
        return;
    }
    DIR *d = opendir(path);  /* the owner differs: Linux shows root (not dumpable) */
    printf("%s: opendir %s\n", what, d ? "ok" : strerror(errno));
    if (d)
        closedir(d);
}

int main(void)
{
    char path[64];
    if (setgroups(0, NULL) != 0 || setresgid(65534, 65534, 65534) != 0
        || setresuid(65534, 65534, 65534) != 0) {
        printf("cannot drop privileges: %s\n", strerror(errno));
        return 1;
    }
    snprintf(path, sizeof path, "/proc/%d/fd/", getpid());
    try("pid/fd", path);
    try("self/fd", "/proc/self/fd");
    try("self/fdinfo", "/proc/self/fdinfo");
    return 0;
}
