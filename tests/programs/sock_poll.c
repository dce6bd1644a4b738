/* sock_poll: readiness of sockets through poll, select and epoll
 * (level-triggered; "et" as argv[1] adds the edge-triggered cases), and
 * 1000 loopback connections accepted and closed by an epoll loop. */
#include "sock_common.h"
#include <sys/epoll.h>
#include <sys/select.h>


static int wait_events(int ep, struct epoll_event *ev, int max, int ms)
{
    int n = epoll_wait(ep, ev, max, ms);
    return n;
}

static void levels(void)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(l, (void *)&a, sizeof a);
    listen(l, 16);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 1}, out[8];
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    show("epoll idle listener", wait_events(ep, out, 8, 0));
    int c, s;
    socklen_t n = sizeof a;
    getsockname(l, (void *)&a, &n);
    c = socket(AF_INET, SOCK_STREAM, 0);
    connect(c, (void *)&a, n);
    show("epoll listener with pending", wait_events(ep, out, 8, 5000));
    showb("events", out[0].events);
    show("still ready (level)", wait_events(ep, out, 8, 0));
    s = accept(l, NULL, NULL);
    show("after accept", wait_events(ep, out, 8, 0));
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
    ev.data.u32 = 2;
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    show("connected: writable", wait_events(ep, out, 8, 0));
    showb("events", out[0].events);
    write(c, "abc", 3);
    show("data: readable", wait_events(ep, out, 8, 5000));
    showb("events", out[0].events);
    char buf[8];
    read(s, buf, 2);
    show("partly read: still readable", wait_events(ep, out, 8, 0));
    showb("events", out[0].events);
    read(s, buf, 8);
    shutdown(c, SHUT_WR);
    show("peer shut: rdhup", wait_events(ep, out, 8, 5000));
    showb("events", out[0].events);
    close(c);
    ev.events = EPOLLIN;
    epoll_ctl(ep, EPOLL_CTL_MOD, s, &ev);
    show("peer closed", wait_events(ep, out, 8, 5000));
    showb("events", out[0].events);
    /* select and poll on a socketpair */
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(sv[0], &r);
    FD_SET(sv[0], &w);
    struct timeval tv = {0, 0};
    show("select writable only", select(sv[0] + 1, &r, &w, NULL, &tv));
    showb("readable", FD_ISSET(sv[0], &r));
    write(sv[1], "x", 1);
    FD_SET(sv[0], &r);
    tv.tv_sec = 5;
    show("select readable", select(sv[0] + 1, &r, NULL, NULL, &tv));
    struct pollfd p = {sv[0], POLLIN | POLLRDHUP, 0};
    close(sv[1]);
    read(sv[0], buf, 1);
    show("poll after pair closed", poll(&p, 1, 5000));
    showb("revents", p.revents);
    close(sv[0]);
    close(s);
    close(l);
    close(ep);
}

static void edges(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u32 = 7}, out[4];
    epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev);
    write(sv[1], "a", 1);
    show("et first edge", wait_events(ep, out, 4, 5000));
    show("et no new edge", wait_events(ep, out, 4, 0));
    write(sv[1], "b", 1);
    show("et second edge", wait_events(ep, out, 4, 5000));
    close(ep);
    close(sv[0]);
    close(sv[1]);
}

static void many(void)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(l, (void *)&a, sizeof a);
    listen(l, 128);
    socklen_t n = sizeof a;
    getsockname(l, (void *)&a, &n);
    pid_t pid = fork();
    if (pid == 0) {
        int failures = 0;
        for (int i = 0; i < 1000; i++) {
            int c = socket(AF_INET, SOCK_STREAM, 0);
            if (connect(c, (void *)&a, n) < 0 || write(c, "z", 1) != 1)
                failures++;
            char b;
            if (read(c, &b, 1) != 0)  /* the server closes: EOF */
                failures++;
            close(c);
        }
        _exit(failures ? 1 : 0);
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l}, out[16];
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    int accepted = 0, bytes = 0;
    while (accepted < 1000) {
        int k = epoll_wait(ep, out, 16, 10000);
        if (k <= 0)
            break;
        for (int i = 0; i < k; i++) {
            if (out[i].data.fd == l) {
                int s;
                while ((s = accept4(l, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    accepted++;
                    ev.events = EPOLLIN;
                    ev.data.fd = s;
                    epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
                }
            } else {
                char b[4];
                int r = read(out[i].data.fd, b, sizeof b);
                if (r > 0)
                    bytes += r;
                epoll_ctl(ep, EPOLL_CTL_DEL, out[i].data.fd, NULL);
                close(out[i].data.fd);
            }
        }
    }
    /* drain the last connections' bytes */
    for (;;) {
        int k = epoll_wait(ep, out, 16, bytes < 1000 ? 10000 : 0);
        if (k <= 0)
            break;
        for (int i = 0; i < k; i++) {
            char b[4];
            int r = read(out[i].data.fd, b, sizeof b);
            if (r > 0)
                bytes += r;
            epoll_ctl(ep, EPOLL_CTL_DEL, out[i].data.fd, NULL);
            close(out[i].data.fd);
        }
    }
    int st;
    waitpid(pid, &st, 0);
    printf("accepted %d bytes %d client status %d\n", accepted, bytes, st);
    close(ep);
    close(l);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1 && strcmp(argv[1], "et") == 0) {
        edges();
        return 0;
    }
    levels();
    many();
    return 0;
}
