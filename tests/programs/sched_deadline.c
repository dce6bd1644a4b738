/* SCHED_DEADLINE through sched_setattr: Linux's parameter checks
 * (__checkparam_dl), a reservation read back by sched_getattr and
 * sched_getscheduler, SCHED_FLAG_KEEP_PARAMS, and sched_setscheduler's
 * refusal of the policy.  Runs in a thread, which leaves the policy with it. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct attr {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
    uint32_t util_min, util_max;
};

static void report(const char *what, long r) {
    printf("%s = %ld errno %d\n", what, r, r < 0 ? errno : 0);
    errno = 0;
}

static long setattr(uint64_t runtime, uint64_t deadline, uint64_t period, uint32_t prio,
                    uint64_t flags) {
    struct attr a = {.size = sizeof a, .policy = 6, .flags = flags, .priority = prio,
                     .runtime = runtime, .deadline = deadline, .period = period};
    return syscall(SYS_sched_setattr, 0, &a, 0);
}

static void *body(void *arg) {
    (void)arg;
    report("runtime < 1024", setattr(1000, 30000000, 30000000, 0, 0));
    report("runtime > deadline", setattr(20000000, 10000000, 30000000, 0, 0));
    report("period < deadline", setattr(10000000, 30000000, 20000000, 0, 0));
    report("deadline 0", setattr(10000000, 0, 30000000, 0, 0));
    report("priority 1", setattr(10000000, 30000000, 30000000, 1, 0));
    report("period 5 s", setattr(10000000, 30000000, 5000000000ULL, 0, 0));
    report("period 50 us", setattr(10000, 50000, 50000, 0, 0));
    report("keep params first", setattr(0, 0, 0, 0, 0x10));
    report("10ms/30ms", setattr(10000000, 30000000, 30000000, 0, 0));
    struct attr a;
    memset(&a, 0, sizeof a);
    report("getattr", syscall(SYS_sched_getattr, 0, &a, sizeof a, 0));
    printf("policy %u runtime %llu deadline %llu period %llu prio %u\n", a.policy,
           (unsigned long long)a.runtime, (unsigned long long)a.deadline,
           (unsigned long long)a.period, a.priority);
    report("getscheduler", sched_getscheduler(0));
    report("keep params", setattr(0, 0, 0, 0, 0x10));
    memset(&a, 0, sizeof a);
    syscall(SYS_sched_getattr, 0, &a, sizeof a, 0);
    printf("kept runtime %llu\n", (unsigned long long)a.runtime);
    struct sched_param sp = {0};
    report("setscheduler deadline", sched_setscheduler(0, 6, &sp));
    report("period 0 uses deadline", setattr(10000000, 30000000, 0, 0, 0));
    memset(&a, 0, sizeof a);
    syscall(SYS_sched_getattr, 0, &a, sizeof a, 0);
    printf("period read back %llu\n", (unsigned long long)a.period);
    struct attr other = {.size = sizeof other, .policy = 0};
    report("back to other", syscall(SYS_sched_setattr, 0, &other, 0));
    report("getscheduler", sched_getscheduler(0));
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    pthread_t th;
    pthread_create(&th, NULL, body, NULL);
    pthread_join(th, NULL);
    return 0;
}
