/* RLIMIT_SIGPENDING refuses a queued real-time signal with caller-made
 * siginfo (tgkill, rt_sigqueueinfo) with EAGAIN, while kill()'s SI_USER one
 * still goes through; rt_sigqueueinfo and kill accept a non-leader thread's
 * id as naming its process. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile pid_t tid;
static volatile int go, done;
static volatile sig_atomic_t got;

static void on_usr1(int s) { (void)s; got++; }

static void show(const char *what, long r) {
    printf("%s = %ld errno %d\n", what, r, r < 0 ? errno : 0);
    errno = 0;
}

static void *body(void *arg) {
    (void)arg;
    tid = syscall(SYS_gettid);
    while (!go)
        sched_yield();
    done = 1;
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    sigset_t rt;
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &rt, NULL);
    signal(SIGUSR1, on_usr1);
    pthread_t th;
    pthread_create(&th, NULL, body, NULL);
    while (!tid)
        sched_yield();
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    si.si_signo = SIGUSR1;
    si.si_code = SI_QUEUE;
    si.si_pid = getpid();
    show("sigqueueinfo to a thread id", syscall(SYS_rt_sigqueueinfo, tid, SIGUSR1, &si));
    show("kill a thread id", kill(tid, 0));

    struct rlimit rl = {0, 0};
    show("setrlimit sigpending 0", setrlimit(RLIMIT_SIGPENDING, &rl));
    show("tgkill rt", syscall(SYS_tgkill, getpid(), tid, SIGRTMIN));
    si.si_signo = SIGRTMIN;
    show("sigqueueinfo rt", syscall(SYS_rt_sigqueueinfo, getpid(), SIGRTMIN, &si));
    show("kill rt (SI_USER)", kill(getpid(), SIGRTMIN));
    show("tgkill standard", syscall(SYS_tgkill, getpid(), tid, SIGURG));
    sigset_t pend;
    sigpending(&pend);
    printf("rt pending %d\n", sigismember(&pend, SIGRTMIN));
    go = 1;
    pthread_join(th, NULL);
    printf("usr1 handled %d\n", got);
    return 0;
}
