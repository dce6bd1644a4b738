/* splice between an empty pipe and a file with no splice support (epoll,
 * eventfd, timerfd: anonymous inodes) fails with EINVAL at once, as Linux's
 * do_splice checks the file before waiting on the pipe (the LTP's splice07
 * hung here).  alarm() turns a hang into a visible death. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

static void show(const char *what, ssize_t r) {
    printf("%s: %zd errno %d\n", what, r, r < 0 ? errno : 0);
}

int main(void) {
    int p[2];
    if (pipe(p)) return 1;
    alarm(10);
    int fds[3] = {epoll_create1(0), eventfd(0, 0), timerfd_create(CLOCK_MONOTONIC, 0)};
    const char *names[3] = {"epoll", "eventfd", "timerfd"};
    char what[64];
    for (int i = 0; i < 3; i++) {
        snprintf(what, sizeof what, "pipe -> %s", names[i]);
        show(what, splice(p[0], NULL, fds[i], NULL, 1, 0));
        snprintf(what, sizeof what, "%s -> pipe", names[i]);
        show(what, splice(fds[i], NULL, p[1], NULL, 1, 0));
    }
    return 0;
}
