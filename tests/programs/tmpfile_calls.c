/* open(O_TMPFILE) and linkat of it (issue 14): argv[1] is a directory on a
   tmpfs (or the sandbox's overlay). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *en(int r) { return r >= 0 ? "ok" : strerrorname_np(errno); }

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) return 2;
    const char *d = argv[1];
    char p[4096], q[4096], link[64];
    struct stat st;
    int fd = open(d, O_TMPFILE | O_RDWR, 0640);
    printf("open O_TMPFILE: %s\n", en(fd));
    printf("write: %zd\n", write(fd, "tmpdata\n", 8));
    fstat(fd, &st);
    printf("nlink %lu mode %o size %ld\n", (unsigned long)st.st_nlink, st.st_mode & 07777,
           (long)st.st_size);
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, q, sizeof q - 1);
    q[n > 0 ? n : 0] = 0;
    printf("fd link ends deleted: %d\n", strstr(q, " (deleted)") != NULL);
    snprintf(p, sizeof p, "%s/named", d);
    errno = 0;
    printf("linkat AT_EMPTY_PATH: %s\n", en(linkat(fd, "", AT_FDCWD, p, AT_EMPTY_PATH)));
    stat(p, &st);
    printf("named nlink %lu size %ld\n", (unsigned long)st.st_nlink, (long)st.st_size);
    snprintf(q, sizeof q, "%s/named2", d);
    errno = 0;
    printf("linkat via /proc/self/fd: %s\n",
           en(linkat(AT_FDCWD, link, AT_FDCWD, q, AT_SYMLINK_FOLLOW)));
    close(fd);
    unlink(p);
    unlink(q);

    fd = open(d, O_TMPFILE | O_WRONLY | O_EXCL, 0600);
    printf("open O_TMPFILE|O_EXCL: %s\n", en(fd));
    errno = 0;
    printf("linkat of O_EXCL one: %s\n", en(linkat(fd, "", AT_FDCWD, p, AT_EMPTY_PATH)));
    close(fd);

    fd = open(d, O_TMPFILE | O_RDONLY, 0600);
    printf("O_TMPFILE read-only: %s\n", en(fd));
    fd = open(d, O_TMPFILE | O_RDWR | O_CREAT, 0600);
    printf("O_TMPFILE|O_CREAT: %s\n", en(fd));
    snprintf(p, sizeof p, "%s/missing", d);
    fd = open(p, O_TMPFILE | O_RDWR, 0600);
    printf("missing dir: %s\n", en(fd));
    fd = open("/proc/self/status", O_TMPFILE | O_RDWR, 0600);
    printf("not a dir: %s\n", en(fd));
    fd = open((char *)8, O_TMPFILE | O_RDWR, 0600);
    printf("bad pointer: %s\n", en(fd));
    /* an ordinary unlinked file cannot be linked back */
    snprintf(p, sizeof p, "%s/plain", d);
    fd = open(p, O_CREAT | O_RDWR, 0600);
    unlink(p);
    errno = 0;
    printf("linkat unlinked plain: %s\n", en(linkat(fd, "", AT_FDCWD, p, AT_EMPTY_PATH)));
    return 0;
}
