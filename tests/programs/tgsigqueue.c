/* rt_tgsigqueueinfo(2) to the calling thread and to another thread of the
 * group, its permission rule on si_code and its errors; and a direct
 * restart_syscall(2), which has nothing to restart. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile int got_code, got_value, got_in_thread;
static volatile pid_t other_tid;
static int go[2], done[2];

static void on_usr1(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    got_code = si->si_code;
    got_value = si->si_value.sival_int;
    got_in_thread = (pid_t)syscall(SYS_gettid) == other_tid;
}

static long tgsq(pid_t tgid, pid_t tid, int sig, int code, int value) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = sig;
    si.si_code = code;
    si.si_value.sival_int = value;
    return syscall(SYS_rt_tgsigqueueinfo, tgid, tid, sig, &si);
}

static void report(const char *what, long r) {
    printf("%s: %s\n", what, r < 0 ? strerrorname_np(errno) : "ok");
}

static void *thread_main(void *arg) {
    (void)arg;
    other_tid = (pid_t)syscall(SYS_gettid);
    if (write(go[1], "x", 1) != 1)
        return NULL;
    char c;
    if (read(done[0], &c, 1) != 1)
        return NULL;
    return NULL;
}

int main(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    pid_t me = getpid(), tid = (pid_t)syscall(SYS_gettid);
    report("to self SI_QUEUE", tgsq(me, tid, SIGUSR1, SI_QUEUE, 7));
    printf("handled: code %d value %d\n", got_code, got_value);
    report("to self SI_USER", tgsq(me, tid, SIGUSR1, SI_USER, 8));
    printf("handled: code %d value %d\n", got_code, got_value);
    if (pipe(go) || pipe(done))
        return 2;
    pthread_t th;
    pthread_create(&th, NULL, thread_main, NULL);
    char c;
    if (read(go[0], &c, 1) != 1)
        return 2;
    report("to thread SI_USER", tgsq(me, other_tid, SIGUSR1, SI_USER, 9));
    report("to thread SI_TKILL", tgsq(me, other_tid, SIGUSR1, SI_TKILL, 9));
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &block, NULL);
    got_in_thread = 0;
    report("to thread SI_QUEUE", tgsq(me, other_tid, SIGUSR1, SI_QUEUE, 10));
    if (write(done[1], "x", 1) != 1)
        return 2;
    pthread_join(th, NULL);
    printf("handled in thread: %d value %d\n", got_in_thread, got_value);
    report("signal 0", tgsq(me, tid, 0, SI_QUEUE, 0));
    report("tid 0", tgsq(me, 0, SIGUSR1, SI_QUEUE, 0));
    report("tgid 0", tgsq(0, tid, SIGUSR1, SI_QUEUE, 0));
    report("no such thread", tgsq(me, 99999999, SIGUSR1, SI_QUEUE, 0));
    report("wrong group", tgsq(me + 99999, tid, SIGUSR1, SI_QUEUE, 0));
    report("signal 65", tgsq(me, tid, 65, SI_QUEUE, 0));
    report("bad siginfo pointer", syscall(SYS_rt_tgsigqueueinfo, me, tid, SIGUSR1, (void *)8));
    report("restart_syscall", syscall(SYS_restart_syscall));
    return 0;
}
