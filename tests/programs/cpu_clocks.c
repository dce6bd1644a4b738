/* CPU-time accounting: the CPU clocks of the process, of threads (its own and
 * another's, by pthread_getcpuclockid) and of a child process; times() and
 * getrusage() user and system time, a reaped child's in the children's
 * fields; ITIMER_VIRTUAL/PROF; POSIX timers on CPU clocks; overruns of a
 * timer set in the past; coarse clocks that never go back after a vDSO read.
 * Prints facts only (never amounts of time), so natively and in the sandbox
 * agree. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got[65];
static volatile unsigned long sink;

static void on_signal(int sig) { got[sig]++; }

static long long ns_of(clockid_t clk) {
    struct timespec ts;
    if (clock_gettime(clk, &ts) != 0)
        return -1;
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Burn CPU in user space until the clock has advanced by ms. */
static void spin_for(clockid_t clk, long ms) {
    long long end = ns_of(clk) + ms * 1000000LL;
    while (ns_of(clk) < end)
        for (int i = 0; i < 100000; i++)
            sink += i;
}

/* Burn CPU in system calls (the kernel's time) until clk advanced by ms. */
static void syscalls_for(clockid_t clk, long ms) {
    long long end = ns_of(clk) + ms * 1000000LL;
    struct tms t;
    while (ns_of(clk) < end)
        for (int i = 0; i < 50; i++)
            times(&t);
}

static void *thread_spin(void *arg) {
    (void)arg;
    spin_for(CLOCK_THREAD_CPUTIME_ID, 30);
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    printf("thread rusage utime>0 %d\n", ru.ru_utime.tv_sec > 0 || ru.ru_utime.tv_usec > 0);
    return NULL;
}

static void clocks(void) {
    long long a = ns_of(CLOCK_THREAD_CPUTIME_ID);
    spin_for(CLOCK_MONOTONIC, 20);
    long long b = ns_of(CLOCK_THREAD_CPUTIME_ID);
    printf("thread clock advances %d\n", a > 0 && b > a);
    printf("process clock >= thread clock %d\n",
           ns_of(CLOCK_PROCESS_CPUTIME_ID) >= ns_of(CLOCK_THREAD_CPUTIME_ID) - 20000000);

    pthread_t th;
    pthread_create(&th, NULL, thread_spin, NULL);
    clockid_t tc;
    printf("pthread_getcpuclockid %d\n", pthread_getcpuclockid(th, &tc));
    long long t0 = ns_of(tc);
    pthread_join(th, NULL);
    printf("other thread clock readable %d\n", t0 >= 0);

    clockid_t pc;
    printf("clock_getcpuclockid(self) %d\n", clock_getcpuclockid(getpid(), &pc));
    printf("own process clock by id %d\n", ns_of(pc) > 0);
    int p[2];
    if (pipe(p) != 0)
        exit(1);
    pid_t kid = fork();
    if (kid == 0) {
        spin_for(CLOCK_PROCESS_CPUTIME_ID, 20);
        char c = 'x';
        if (write(p[1], &c, 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    char c;
    if (read(p[0], &c, 1) != 1)
        exit(1);
    printf("clock_getcpuclockid(child) %d\n", clock_getcpuclockid(kid, &pc));
    printf("child clock >= 20ms %d\n", ns_of(pc) >= 20000000);
    /* a thread clock of a thread of another process: EINVAL */
    clockid_t foreign = (clockid_t)((~kid) << 3) | 6;
    struct timespec ts;
    int r = clock_gettime(foreign, &ts);
    printf("foreign thread clock %d errno %d\n", r, errno);
    kill(kid, SIGKILL);
    waitpid(kid, NULL, 0);
    close(p[0]);
    close(p[1]);
}

static void times_and_rusage(void) {
    struct tms t0, t1, t2;
    times(&t0);
    spin_for(CLOCK_PROCESS_CPUTIME_ID, 60);
    syscalls_for(CLOCK_MONOTONIC, 150);
    times(&t1);
    printf("times utime grows %d\n", t1.tms_utime > t0.tms_utime);
    printf("times stime grows %d\n", t1.tms_stime > t0.tms_stime);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("rusage self stime>0 %d\n", ru.ru_stime.tv_sec > 0 || ru.ru_stime.tv_usec > 0);
    pid_t kid = fork();
    if (kid == 0) {
        spin_for(CLOCK_PROCESS_CPUTIME_ID, 60);
        syscalls_for(CLOCK_MONOTONIC, 150);
        _exit(0);
    }
    waitpid(kid, NULL, 0);
    times(&t2);
    printf("children user %d system %d\n", t2.tms_cutime > 0, t2.tms_cstime > 0);
    getrusage(RUSAGE_CHILDREN, &ru);
    printf("rusage children stime>0 %d\n", ru.ru_stime.tv_sec > 0 || ru.ru_stime.tv_usec > 0);
}

static void itimers(void) {
    int which[] = {ITIMER_VIRTUAL, ITIMER_PROF};
    int sig[] = {SIGVTALRM, SIGPROF};
    for (int i = 0; i < 2; i++) {
        signal(sig[i], on_signal);
        struct itimerval v = {{0, 20000}, {0, 20000}}, o;
        printf("setitimer(%d) %d\n", which[i], setitimer(which[i], &v, NULL));
        getitimer(which[i], &o);
        printf("interval kept %d value in range %d\n",
               o.it_interval.tv_sec == 0 && o.it_interval.tv_usec == 20000,
               o.it_value.tv_sec == 0 && o.it_value.tv_usec > 0 && o.it_value.tv_usec <= 40000);
        while (got[sig[i]] < 3)
            sink++;
        struct itimerval off = {{0, 0}, {0, 0}};
        setitimer(which[i], &off, &o);
        getitimer(which[i], &o);
        printf("signals seen %d disarmed %d\n", got[sig[i]] >= 3,
               o.it_value.tv_sec == 0 && o.it_value.tv_usec == 0);
    }
}

static void posix_cpu_timers(void) {
    clockid_t clks[] = {CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID};
    signal(SIGUSR1, on_signal);
    for (int i = 0; i < 2; i++) {
        struct sigevent sev;
        memset(&sev, 0, sizeof(sev));
        sev.sigev_notify = SIGEV_SIGNAL;
        sev.sigev_signo = SIGUSR1;
        timer_t tm;
        printf("timer_create(%d) %d\n", clks[i], timer_create(clks[i], &sev, &tm));
        got[SIGUSR1] = 0;
        long long start = ns_of(clks[i]);
        struct itimerspec its = {{0, 0}, {0, 30000000}}, cur;
        timer_settime(tm, 0, &its, NULL);
        timer_gettime(tm, &cur);
        printf("armed %d\n", cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 &&
                             cur.it_value.tv_nsec <= 30000000);
        while (!got[SIGUSR1])
            sink++;
        printf("fired not early %d\n", ns_of(clks[i]) - start >= 30000000);
        timer_gettime(tm, &cur);
        printf("one-shot disarmed %d\n", cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);
        long r = syscall(SYS_timer_settime, tm, 0, NULL, NULL);
        printf("settime NULL %ld errno %d\n", r, errno);
        timer_delete(tm);
    }
}

static void overruns(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, NULL);
    struct sigevent sev;
    memset(&sev, 0, sizeof(sev));
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGUSR2;
    timer_t tm;
    timer_create(CLOCK_MONOTONIC, &sev, &tm);
    struct itimerspec its;
    clock_gettime(CLOCK_MONOTONIC, &its.it_value);
    its.it_value.tv_sec -= 10; /* 10 s ago, every ms: 10000 missed */
    its.it_interval.tv_sec = 0;
    its.it_interval.tv_nsec = 1000000;
    timer_settime(tm, TIMER_ABSTIME, &its, NULL);
    siginfo_t si;
    int s = sigwaitinfo(&set, &si);
    int over = timer_getoverrun(tm);
    printf("overrun signal %d code %d count>=9999 %d\n", s, si.si_code, over >= 9999);
    timer_delete(tm);
    signal(SIGUSR2, SIG_IGN); /* drop an expiry queued before the delete */
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

static void coarse(void) {
    int back = 0;
    for (int i = 0; i < 2000 && !back; i++) {
        long long a = ns_of(CLOCK_MONOTONIC_COARSE);
        struct timespec ts;
        syscall(SYS_clock_gettime, CLOCK_MONOTONIC_COARSE, &ts);
        back = ts.tv_sec * 1000000000LL + ts.tv_nsec < a;
    }
    printf("coarse never back %d\n", !back);
}

static volatile int *xcpu_seen;
static void on_xcpu(int s) { (void)s; *xcpu_seen = 1; }

/* RLIMIT_CPU 1 s soft, 2 s hard: SIGXCPU at 1 s of CPU time, SIGKILL at 2 s. */
static void cpu_limit(void) {
    xcpu_seen = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid_t kid = fork();
    if (kid == 0) {
        signal(SIGXCPU, on_xcpu);
        struct rlimit rl = {1, 2};
        if (setrlimit(RLIMIT_CPU, &rl) != 0)
            _exit(1);
        alarm(30);
        for (;;)
            sink++;
    }
    int st;
    waitpid(kid, &st, 0);
    printf("rlimit cpu: killed by %d after SIGXCPU %d\n", WIFSIGNALED(st) ? WTERMSIG(st) : -1,
           *xcpu_seen);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    clocks();
    times_and_rusage();
    itimers();
    posix_cpu_timers();
    overruns();
    coarse();
    cpu_limit();
    printf("done\n");
    return 0;
}
