/* /proc/self/mounts is pollable: epoll reports EPOLLPRI|EPOLLERR once per
 * change of the mount table (a mount, then an umount), and nothing when it
 * did not change (the LTP's epoll_wait10; systemd watches mounts so).
 * argv[1]: a scratch directory to mount a tmpfs on, in a new mount namespace. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <unistd.h>

static void wait_report(int ep, int ms, const char *what) {
    struct epoll_event ev = {0};
    int n = epoll_wait(ep, &ev, 1, ms);
    printf("%s: %d events, pri %d err %d\n", what, n, !!(ev.events & EPOLLPRI),
           !!(ev.events & EPOLLERR));
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
        printf("no mount namespace: errno %d\n", errno);
        return 0;
    }
    int fd = open("/proc/self/mounts", O_RDONLY);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLPRI, .data.fd = fd};
    printf("epoll_ctl add: %d\n", epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
    int reg = open(argv[1], O_RDONLY | O_DIRECTORY);
    errno = 0;
    int r = epoll_ctl(ep, EPOLL_CTL_ADD, reg, &ev);
    printf("a directory: %d errno %d\n", r, errno);
    wait_report(ep, 0, "unchanged");
    if (mount("none", argv[1], "tmpfs", 0, NULL)) return 3;
    wait_report(ep, 2000, "after mount");
    wait_report(ep, 0, "again");
    struct pollfd p = {.fd = fd, .events = POLLIN};
    r = poll(&p, 1, 0);
    printf("poll: %d revents %#x\n", r, p.revents);
    umount(argv[1]);
    wait_report(ep, 2000, "after umount");
    return 0;
}
