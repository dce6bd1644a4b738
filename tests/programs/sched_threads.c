/* Scheduling queries on a thread's id, not only the process's: glibc's
 * pthread_getattr_np asks sched_getaffinity(tid) of the thread (the JVM aborts
 * at start when that fails), and the other sched_* calls take a tid too.
 * Prints errno names and booleans only, the same on every host. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *ename(int e) {
    switch (e) {
    case 0: return "ok";
    case ESRCH: return "ESRCH";
    case EINVAL: return "EINVAL";
    case EPERM: return "EPERM";
    case EFAULT: return "EFAULT";
    default: return strerror(e);
    }
}

static void report(const char *what, long rc) {
    printf("%-36s %s\n", what, rc < 0 ? ename(errno) : "ok");
}

static void queries(const char *who, pid_t tid) {
    char what[64];
    cpu_set_t set;
    struct sched_param sp;
    struct rlimit rl;

    CPU_ZERO(&set);
    snprintf(what, sizeof what, "%s getaffinity", who);
    long n = syscall(SYS_sched_getaffinity, tid, sizeof set, &set);
    report(what, n);
    snprintf(what, sizeof what, "%s affinity has a cpu", who);
    printf("%-36s %d\n", what, n > 0 && CPU_COUNT(&set) > 0);
    snprintf(what, sizeof what, "%s setaffinity same", who);
    report(what, n > 0 ? sched_setaffinity(tid, sizeof set, &set) : -1);
    snprintf(what, sizeof what, "%s getscheduler", who);
    int pol = sched_getscheduler(tid);
    report(what, pol);
    snprintf(what, sizeof what, "%s policy is SCHED_OTHER", who);
    printf("%-36s %d\n", what, pol == SCHED_OTHER);
    snprintf(what, sizeof what, "%s getparam", who);
    sp.sched_priority = 99;
    report(what, sched_getparam(tid, &sp));
    snprintf(what, sizeof what, "%s priority 0", who);
    printf("%-36s %d\n", what, sp.sched_priority == 0);
    snprintf(what, sizeof what, "%s prlimit NOFILE", who);
    report(what, prlimit(tid, RLIMIT_NOFILE, NULL, &rl));
}

static void *thread_main(void *arg) {
    (void)arg;
    pthread_attr_t attr;
    int rc = pthread_getattr_np(pthread_self(), &attr);
    printf("%-36s %s\n", "pthread_getattr_np in thread", ename(rc));
    if (rc == 0) {
        void *stack;
        size_t size;
        pthread_attr_getstack(&attr, &stack, &size);
        printf("%-36s %d\n", "thread stack size > 0", size > 0);
        cpu_set_t set;
        CPU_ZERO(&set);
        rc = pthread_attr_getaffinity_np(&attr, sizeof set, &set);
        printf("%-36s %s %d\n", "attr affinity", ename(rc), CPU_COUNT(&set) > 0);
        pthread_attr_destroy(&attr);
    }
    pid_t tid = (pid_t)syscall(SYS_gettid);
    printf("%-36s %d\n", "thread tid differs from pid", tid != getpid());
    queries("thread", tid);
    cpu_set_t set;
    CPU_ZERO(&set);
    rc = pthread_getaffinity_np(pthread_self(), sizeof set, &set);
    printf("%-36s %s %d\n", "pthread_getaffinity_np", ename(rc), CPU_COUNT(&set) > 0);
    return NULL;
}

static void *inherit_main(void *arg) {
    (void)arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    sched_getaffinity(0, sizeof set, &set);
    printf("%-36s %d\n", "new thread inherits it", CPU_COUNT(&set) == 1);
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    queries("self(0)", 0);
    queries("pid", getpid());
    pthread_t th;
    pthread_create(&th, NULL, thread_main, NULL);
    pthread_join(th, NULL);

    cpu_set_t set;
    CPU_ZERO(&set);
    report("getaffinity of a dead tid", syscall(SYS_sched_getaffinity, 999999, sizeof set, &set));
    report("getscheduler of a dead tid", sched_getscheduler(999999));
    report("getparam of a dead tid", sched_getparam(999999, &(struct sched_param){0}));
    report("getaffinity pid -1", syscall(SYS_sched_getaffinity, -1, sizeof set, &set));
    report("getscheduler pid -1", sched_getscheduler(-1));
    report("getparam NULL", sched_getparam(0, NULL));
    CPU_ZERO(&set);
    report("setaffinity empty mask", sched_setaffinity(0, sizeof set, &set));
    /* A mask that was set reads back as set, and a new thread inherits it. */
    cpu_set_t all, one;
    CPU_ZERO(&all);
    sched_getaffinity(0, sizeof all, &all);
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &all)) { CPU_SET(c, &one); break; }
    report("setaffinity one cpu", sched_setaffinity(0, sizeof one, &one));
    CPU_ZERO(&set);
    sched_getaffinity(0, sizeof set, &set);
    printf("%-36s %d\n", "reads back one cpu", CPU_EQUAL(&set, &one));
    pthread_create(&th, NULL, inherit_main, NULL);
    pthread_join(th, NULL);
    unsigned cpu = 9999, node = 9999;
    report("getcpu pinned", syscall(SYS_getcpu, &cpu, &node, NULL));
    printf("%-36s %d %d\n", "getcpu is the pinned cpu, node 0", CPU_ISSET(cpu, &one), node == 0);
    report("getcpu NULLs", syscall(SYS_getcpu, NULL, NULL, NULL));
    report("setaffinity all again", sched_setaffinity(0, sizeof all, &all));
    CPU_ZERO(&set);
    sched_getaffinity(0, sizeof set, &set);
    printf("%-36s %d\n", "reads back all", CPU_EQUAL(&set, &all));
    printf("%-36s %d\n", "priority max OTHER", sched_get_priority_max(SCHED_OTHER));
    printf("%-36s %d\n", "priority min OTHER", sched_get_priority_min(SCHED_OTHER));
    printf("%-36s %d\n", "priority max FIFO", sched_get_priority_max(SCHED_FIFO));
    printf("%-36s %d\n", "priority min FIFO", sched_get_priority_min(SCHED_FIFO));
    report("priority max bad policy", sched_get_priority_max(77));
    struct sched_param sp = {0};
    report("setscheduler OTHER 0", sched_setscheduler(0, SCHED_OTHER, &sp));
    sp.sched_priority = 5;
    report("setscheduler OTHER 5", sched_setscheduler(0, SCHED_OTHER, &sp));
    report("setparam 0", sched_setparam(0, &(struct sched_param){0}));
    return 0;
}
