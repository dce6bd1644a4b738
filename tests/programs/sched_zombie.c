/* Scheduling calls on a zombie: Linux's find_process_by_pid() finds a child
 * that has exited but is not reaped yet, so sched_getscheduler/getparam and
 * getpriority answer for it (SCHED_RESET_ON_FORK's reset is read back so by
 * the LTP's sched_setscheduler04); once it is reaped they give ESRCH. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    struct sched_param p = {.sched_priority = 10};
    int can_rt = sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &p) == 0;
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    siginfo_t si;
    waitid(P_PID, pid, &si, WEXITED | WNOWAIT);  /* a zombie from here on */
    struct sched_param q = {.sched_priority = 77};
    errno = 0;
    int pol = sched_getscheduler(pid);
    printf("zombie policy: %d errno %d\n", pol, errno);
    int g = sched_getparam(pid, &q);
    printf("zombie param: %d prio %d (reset %s)\n", g, q.sched_priority,
           can_rt ? "asked" : "not asked");
    errno = 0;
    int prio = getpriority(PRIO_PROCESS, pid);
    printf("zombie nice: %d errno %d\n", prio, errno);
    waitpid(pid, NULL, 0);
    errno = 0;
    pol = sched_getscheduler(pid);
    printf("reaped policy: %d errno %d\n", pol, errno);
    return 0;
}
