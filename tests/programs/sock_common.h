/* Helpers shared by the sock_*.c differential programs: print a call's
 * result and errno name, never addresses, ports or pids. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(const char *what, long r)
{
    printf("%-40s %ld %s\n", what, r, r < 0 ? strerrorname_np(errno) : "ok");
    fflush(stdout);
}

static void showb(const char *what, long v)
{
    printf("%-40s %ld\n", what, v);
    fflush(stdout);
}

__attribute__((unused)) static int int_opt(int fd, int level, int name)
{
    int v = -99;
    socklen_t len = sizeof v;
    if (getsockopt(fd, level, name, &v, &len) < 0)
        return -1000 - errno;
    return v;
}
