/* Scheduling parameters: policies, priorities, nice, sched_attr, I/O priority,
 * with their errors; a forked child changes its own and reports what it and
 * /proc/self/stat see. Every result with its errno, the same natively and in
 * the sandbox. Run as root (CAP_SYS_NICE) and, in a child, as uid 1000. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct attr {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
    uint32_t util_min, util_max;
};

static void report(const char *what, long ret) {
    printf("%s: %ld %s\n", what, ret, ret < 0 ? strerrorname_np(errno) : "-");
    fflush(stdout);
}

static void stat_fields(const char *tag) {
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')') + 2;
    int field = 3;
    long prio = 0, nice = 0;
    for (char *tok = strtok(p, " "); tok; tok = strtok(NULL, " "), field++) {
        if (field == 18) prio = atol(tok);
        if (field == 19) nice = atol(tok);
    }
    printf("%s: stat priority %ld nice %ld\n", tag, prio, nice);
}

static void as_root(void) {
    struct sched_param p = {.sched_priority = 0};
    struct timespec ts;
    report("getscheduler", sched_getscheduler(0));
    report("max fifo", sched_get_priority_max(SCHED_FIFO));
    report("min rr", sched_get_priority_min(SCHED_RR));
    report("max other", sched_get_priority_max(SCHED_OTHER));
    report("max bad", sched_get_priority_max(42));
    report("other with prio 5", sched_setscheduler(0, SCHED_OTHER, &(struct sched_param){5}));
    report("rr with prio 0", sched_setscheduler(0, SCHED_RR, &p));
    report("rr with prio 100", sched_setscheduler(0, SCHED_RR, &(struct sched_param){100}));
    report("bad policy", sched_setscheduler(0, 42, &p));
    report("null param", syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, NULL));
    report("pid -1", sched_setscheduler(-1, SCHED_OTHER, &p));
    report("no such pid", sched_getscheduler(99999));
    report("rr 7 reset on fork", sched_setscheduler(0, SCHED_RR | SCHED_RESET_ON_FORK,
                                                    &(struct sched_param){7}));
    report("getscheduler", sched_getscheduler(0));
    sched_getparam(0, &p);
    printf("param %d\n", p.sched_priority);
    report("rr interval", sched_rr_get_interval(0, &ts));
    printf("interval %ld.%09ld\n", (long)ts.tv_sec, ts.tv_nsec);
    stat_fields("rr");
    pid_t pid = fork();
    if (pid == 0) {
        report("child getscheduler", sched_getscheduler(0));
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    report("back to other", sched_setscheduler(0, SCHED_OTHER, &(struct sched_param){0}));
    report("setparam under other", sched_setparam(0, &(struct sched_param){3}));
    struct attr a = {.size = sizeof a, .policy = SCHED_BATCH, .nice = 5};
    report("setattr batch nice 5", syscall(SYS_sched_setattr, 0, &a, 0));
    memset(&a, 0, sizeof a);
    report("getattr", syscall(SYS_sched_getattr, 0, &a, sizeof a, 0));
    printf("attr size %u policy %u nice %d prio %u util_max %u\n", a.size, a.policy, a.nice,
           a.priority, a.util_max);
    report("getattr small", syscall(SYS_sched_getattr, 0, &a, 40, 0));
    report("getattr flags", syscall(SYS_sched_getattr, 0, &a, sizeof a, 1));
    a.size = 20;
    report("setattr small size", syscall(SYS_sched_setattr, 0, &a, 0));
    printf("size written back %u\n", a.size);
    struct attr dl = {.size = sizeof dl, .policy = 6};
    report("setattr deadline zero", syscall(SYS_sched_setattr, 0, &dl, 0));
    report("getpriority raw", syscall(SYS_getpriority, PRIO_PROCESS, 0));
    report("setpriority 30", setpriority(PRIO_PROCESS, 0, 30));
    report("getpriority raw", syscall(SYS_getpriority, PRIO_PROCESS, 0));
    stat_fields("nice 19");
    report("setpriority -5", setpriority(PRIO_PROCESS, 0, -5));
    report("getpriority pgrp", getpriority(PRIO_PGRP, 0));
    report("getpriority bad which", getpriority(7, 0));
    report("ioprio get", syscall(SYS_ioprio_get, 1, 0));
    report("ioprio set be 4", syscall(SYS_ioprio_set, 1, 0, (2 << 13) | 4));
    report("ioprio get", syscall(SYS_ioprio_get, 1, 0));
    report("ioprio set bad class", syscall(SYS_ioprio_set, 1, 0, (5 << 13)));
    report("ioprio bad who", syscall(SYS_ioprio_get, 9, 0));
}

static void as_user(void) {
    setresuid(1000, 1000, 1000);
    report("user rr", sched_setscheduler(0, SCHED_RR, &(struct sched_param){1}));
    report("user nice 5", setpriority(PRIO_PROCESS, 0, 5));
    report("user nice back to 0", setpriority(PRIO_PROCESS, 0, 0));
    report("user renice parent", setpriority(PRIO_PROCESS, getppid(), 1));
    report("user setscheduler parent", sched_setscheduler(getppid(), SCHED_BATCH,
                                                          &(struct sched_param){0}));
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    pid_t pid = fork();
    if (pid == 0) {
        as_root();
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    pid = fork();
    if (pid == 0) {
        as_user();
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    return 0;
}
