/* epoll against Linux: a pipe's write end gets an EPOLLET edge only when a
   read makes it writable again (not for a read that leaves it full); more
   ready files than maxevents are reported round-robin; an EPOLLEXCLUSIVE
   edge wakes one sleeping waiter, while instances nobody sleeps on all see
   it. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

static int ex[2];
static volatile int round_no;
static volatile int tids[2];
static volatile int woke_in[2];  /* written by the waiters, spun on by main */

static void add(int ep, int fd, unsigned ev, int data) {
    struct epoll_event e = {.events = ev, .data.u64 = data};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}

static int wait0(int ep, int *data) {
    struct epoll_event e;
    int n = epoll_wait(ep, &e, 1, 0);
    if (n == 1 && data) *data = e.data.u64;
    return n;
}

static void *waiter(void *arg) {
    int i = (int)(long)arg;
    int ep = epoll_create1(0);
    add(ep, ex[0], EPOLLIN | EPOLLET | EPOLLEXCLUSIVE, i);
    tids[i] = syscall(SYS_gettid);
    struct epoll_event e;
    if (epoll_wait(ep, &e, 1, 20000) == 1) woke_in[i] = round_no;
    return NULL;
}

static int sleeping(int tid) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p && p[2] == 'S';
}

int main(void) {
    /* Edges of a one-page pipe's write end. */
    int p[2], d;
    char buf[4096];
    pipe2(p, O_NONBLOCK);
    fcntl(p[1], F_SETPIPE_SZ, 4096);
    int ep = epoll_create1(0);
    add(ep, p[0], EPOLLIN | EPOLLET, 0);
    add(ep, p[1], EPOLLOUT | EPOLLET, 1);
    memset(buf, 'a', sizeof buf);
    write(p[1], buf, sizeof buf);
    printf("full: %d", wait0(ep, &d));
    printf(" (fd %d)\n", d);
    read(p[0], buf, 2048);
    printf("half read: %d\n", wait0(ep, NULL));
    read(p[0], buf, 2048);
    d = -1;
    printf("all read: %d", wait0(ep, &d));
    printf(" (fd %d)\n", d);

    /* 13 ready pipes, 3 events a call: each reported 4 times in 52. */
    int count[13] = {0};
    int ep2 = epoll_create1(0);
    for (int i = 0; i < 13; i++) {
        int q[2];
        pipe(q);
        write(q[1], "x", 1);
        add(ep2, q[0], EPOLLIN, i);
    }
    struct epoll_event evs[3];
    for (int got = 0; got < 52;) {
        int n = epoll_wait(ep2, evs, 3, 0);
        for (int i = 0; i < n && got < 52; i++, got++) count[evs[i].data.u64]++;
    }
    printf("round robin:");
    for (int i = 0; i < 13; i++) printf(" %d", count[i]);
    printf("\n");

    /* EPOLLEXCLUSIVE, nobody asleep: both instances see the edge. */
    int x[2];
    pipe(x);
    int e1 = epoll_create1(0), e2 = epoll_create1(0);
    add(e1, x[0], EPOLLIN | EPOLLET | EPOLLEXCLUSIVE, 0);
    add(e2, x[0], EPOLLIN | EPOLLET | EPOLLEXCLUSIVE, 0);
    write(x[1], "x", 1);
    printf("exclusive, not asleep: %d %d\n", wait0(e1, NULL), wait0(e2, NULL));

    /* Two sleeping exclusive waiters: one wake-up per write. */
    pipe(ex);
    pthread_t th[2];
    for (long i = 0; i < 2; i++) pthread_create(&th[i], NULL, waiter, (void *)i);
    /* Both asleep in epoll_wait, seen so in three passes in a row (a thread
       shows 'S' from the moment its call enters the kernel). */
    for (int seen = 0; seen < 3;)
        seen = tids[0] && tids[1] && sleeping(tids[0]) && sleeping(tids[1]) ? seen + 1 : 0;
    round_no = 1;
    write(ex[1], "x", 1);
    while (!woke_in[0] && !woke_in[1]) sched_yield();
    read(ex[0], buf, 1);
    round_no = 2;
    write(ex[1], "x", 1);
    pthread_join(th[0], NULL);
    pthread_join(th[1], NULL);
    printf("exclusive woke in rounds: %d\n", woke_in[0] + woke_in[1]);
    return 0;
}
