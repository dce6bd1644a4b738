/* epoll instances inside epoll instances: the nesting limit and cycles
 * (ELOOP), and SA_RESETHAND resetting only the handler (the flags stay, as
 * sigaction reads them inside the handler). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static void report(const char *what, long r) {
    printf("%s: %s\n", what, r < 0 ? strerrorname_np(errno) : "ok");
}

static volatile unsigned long seen_flags;
static volatile int seen_dfl;

static void on_usr1(int sig, siginfo_t *si, void *uc) {
    (void)si;
    (void)uc;
    struct sigaction now;
    sigaction(sig, NULL, &now);
    seen_flags = (unsigned long)now.sa_flags & (SA_SIGINFO | SA_RESETHAND | SA_RESTART);
    seen_dfl = now.sa_handler == SIG_DFL;
}

int main(void) {
    int p[2];
    if (pipe(p))
        return 2;
    struct epoll_event ev = {.events = EPOLLIN};
    int fd = p[0];
    for (int depth = 1; depth <= 6; depth++) {
        int e = epoll_create1(0);
        ev.data.fd = fd;
        char what[32];
        snprintf(what, sizeof what, "nest depth %d", depth);
        report(what, epoll_ctl(e, EPOLL_CTL_ADD, fd, &ev));
        fd = e;
    }
    int a = epoll_create1(0), b = epoll_create1(0), c = epoll_create1(0);
    report("a in b", epoll_ctl(b, EPOLL_CTL_ADD, a, &ev));
    report("b in c", epoll_ctl(c, EPOLL_CTL_ADD, b, &ev));
    report("c in a (cycle of three)", epoll_ctl(a, EPOLL_CTL_ADD, c, &ev));
    report("b in a (cycle of two)", epoll_ctl(a, EPOLL_CTL_ADD, b, &ev));
    report("a in a", epoll_ctl(a, EPOLL_CTL_ADD, a, &ev));
    report("b in c again", epoll_ctl(c, EPOLL_CTL_ADD, b, &ev));

    struct sigaction sa = {0};
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    printf("inside handler: flags %#lx handler reset %d\n", seen_flags, seen_dfl);
    return 0;
}
