/* Errno choices the LTP checks for an unprivileged caller and odd
   descriptors: chroot into a directory without search permission (EACCES
   before EPERM), bind to a port below 1024 (EACCES), connect to a unix
   socket file without write permission (EACCES), accept on an O_PATH
   descriptor (EBADF), splice from a directory (EINVAL), getsockname into a NULL buffer (EFAULT).
   Run as root; it drops to uid 65534 itself. Argument: a scratch directory. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void report(const char *what, long r) {
    printf("%s: %s\n", what, r < 0 ? strerrorname_np(errno) : "ok");
}

int main(int argc, char **argv) {
    if (argc < 2 || chdir(argv[1])) return 2;
    chmod(".", 0777);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(463)};
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in any = {.sin_family = AF_INET};
    bind(s, (struct sockaddr *)&any, sizeof any);
    socklen_t len = sizeof any;
    report("getsockname NULL buffer", getsockname(s, NULL, &len));
    report("getsockname NULL length", getsockname(s, (struct sockaddr *)&any, NULL));
    int p = open(".", O_PATH);
    report("accept O_PATH", accept(p, NULL, NULL));
    report("listen O_PATH", listen(p, 1));
    int dir = open(".", O_RDONLY | O_DIRECTORY), pp[2];
    pipe(pp);
    report("splice directory to pipe", splice(dir, NULL, pp[1], NULL, 1, 0));

    int srv = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    strcpy(un.sun_path, "sock");
    bind(srv, (struct sockaddr *)&un, sizeof un);
    listen(srv, 1);
    /* A bind mount onto a magic link that names a symlink (an O_PATH,
       O_NOFOLLOW descriptor of /proc/self/fd/N): ENOENT, nothing mounted. */
    int foo = open("foo", O_RDONLY | O_CREAT, 0644);
    close(open("bar", O_RDONLY | O_CREAT, 0644));
    char link[64];
    snprintf(link, sizeof link, "/proc/%d/fd/%d", getpid(), foo);
    int lfd = open(link, O_PATH | O_NOFOLLOW);
    snprintf(link, sizeof link, "/proc/%d/fd/%d", getpid(), lfd);
    report("bind mount onto a magic link to a symlink", mount("bar", link, "", MS_BIND, 0));
    chmod("sock", 0555);
    mkdir("nosearch", 0222);
    if (seteuid(65534)) return 3;
    report("chroot without search permission", chroot("nosearch"));
    report("chroot as nobody", chroot("."));
    int s2 = socket(AF_INET, SOCK_STREAM, 0);
    report("bind port 463 as nobody", bind(s2, (struct sockaddr *)&sin, sizeof sin));
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    report("connect without write permission", connect(c, (struct sockaddr *)&un, sizeof un));
    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    report("dgram sendto without write permission",
           sendto(d, "x", 1, 0, (struct sockaddr *)&un, sizeof un));
    return 0;
}
