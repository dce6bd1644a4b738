/* errno_cases: error returns of the first-stage syscalls, through raw
 * syscall(2) so libc wrappers neither hide nor add errors. stdout and stderr
 * are pipes and stdin is a pipe or /dev/null in the tests. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>

static void show(const char *what, long r)
{
    printf("%-34s %ld %s\n", what, r, r < 0 ? strerrorname_np(errno) : "ok");
}

struct ksigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
};

int main(void)
{
    char buf[16] = "x";

    fprintf(stderr, "errno_cases: stderr works\n");

    /* read/write */
    show("write bad fd 99", syscall(SYS_write, 99, buf, 1));
    show("write fd -1", syscall(SYS_write, -1, buf, 1));
    show("read bad fd 99", syscall(SYS_read, 99, buf, 1));
    show("write bad buffer", syscall(SYS_write, 1, (void *)8, 4));
    show("write to stdin", syscall(SYS_write, 0, buf, 1));
    show("read from stdout", syscall(SYS_read, 1, buf, 1));
    show("write zero bytes bad buffer", syscall(SYS_write, 1, (void *)8, 0));

    /* fcntl/ioctl on stdio (pipes) */
    long fl = syscall(SYS_fcntl, 1, F_GETFL);
    printf("%-34s %ld\n", "stdout accmode", fl & O_ACCMODE);
    show("fcntl F_GETFD stdout", syscall(SYS_fcntl, 1, F_GETFD));
    show("fcntl bad fd", syscall(SYS_fcntl, 99, F_GETFL));
    show("fcntl bad cmd", syscall(SYS_fcntl, 1, 99999));
    int on = 1, off = 0;
    show("ioctl FIONBIO on", syscall(SYS_ioctl, 1, FIONBIO, &on));
    printf("%-34s %d\n", "O_NONBLOCK set", (syscall(SYS_fcntl, 1, F_GETFL) & O_NONBLOCK) != 0);
    show("ioctl FIONBIO off", syscall(SYS_ioctl, 1, FIONBIO, &off));
    printf("%-34s %d\n", "O_NONBLOCK clear", (syscall(SYS_fcntl, 1, F_GETFL) & O_NONBLOCK) == 0);
    show("ioctl FIONBIO bad pointer", syscall(SYS_ioctl, 1, FIONBIO, (void *)8));
    struct termios tio;
    show("ioctl TCGETS on pipe", syscall(SYS_ioctl, 1, TCGETS, &tio));
    struct winsize ws;
    show("ioctl TIOCGWINSZ on pipe", syscall(SYS_ioctl, 1, TIOCGWINSZ, &ws));
    show("ioctl bad fd", syscall(SYS_ioctl, 99, TCGETS, &tio));

    /* memory */
    show("mmap zero length", syscall(SYS_mmap, NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    show("munmap unaligned", syscall(SYS_munmap, (void *)4097, 4096));
    show("mprotect unaligned", syscall(SYS_mprotect, (void *)4097, 4096, PROT_READ));

    /* signals (recorded only) */
    struct ksigaction act = {SIG_IGN, 0, NULL, 0}, old;
    show("rt_sigaction SIGKILL", syscall(SYS_rt_sigaction, SIGKILL, &act, NULL, 8));
    show("rt_sigaction SIGSTOP", syscall(SYS_rt_sigaction, SIGSTOP, &act, NULL, 8));
    show("rt_sigaction signal 0", syscall(SYS_rt_sigaction, 0, &act, NULL, 8));
    show("rt_sigaction signal 65", syscall(SYS_rt_sigaction, 65, &act, NULL, 8));
    show("rt_sigaction sigsetsize 4", syscall(SYS_rt_sigaction, SIGUSR1, &act, NULL, 4));
    show("rt_sigaction SIGUSR1 ign", syscall(SYS_rt_sigaction, SIGUSR1, &act, NULL, 8));
    memset(&old, 0, sizeof old);
    show("rt_sigaction SIGUSR1 read back", syscall(SYS_rt_sigaction, SIGUSR1, NULL, &old, 8));
    printf("%-34s %d\n", "SIGUSR1 handler is SIG_IGN", old.handler == SIG_IGN);
    show("rt_sigaction bad pointer", syscall(SYS_rt_sigaction, SIGUSR1, (void *)8, NULL, 8));
    uint64_t set = 1ULL << (SIGUSR2 - 1), oset = 0;
    show("rt_sigprocmask bad how", syscall(SYS_rt_sigprocmask, 99, &set, NULL, 8));
    show("rt_sigprocmask sigsetsize 4", syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, NULL, 4));
    show("rt_sigprocmask block", syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, NULL, 8));
    show("rt_sigprocmask read", syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &oset, 8));
    printf("%-34s %d\n", "SIGUSR2 blocked", (oset & set) != 0);
    uint64_t kill_stop = (1ULL << (SIGKILL - 1)) | (1ULL << (SIGSTOP - 1));
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &kill_stop, NULL, 8);
    syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &oset, 8);
    printf("%-34s %d\n", "SIGKILL/SIGSTOP never blocked", (oset & kill_stop) == 0);
    stack_t ss = {.ss_sp = buf, .ss_size = 16, .ss_flags = 0};
    show("sigaltstack too small", syscall(SYS_sigaltstack, &ss, NULL));
    ss.ss_flags = 12345;
    ss.ss_size = 1 << 16;
    show("sigaltstack bad flags", syscall(SYS_sigaltstack, &ss, NULL));
    stack_t cur;
    show("sigaltstack query", syscall(SYS_sigaltstack, NULL, &cur));
    printf("%-34s %d\n", "sigaltstack disabled", (cur.ss_flags & SS_DISABLE) != 0);

    /* limits */
    struct rlimit rl;
    show("prlimit64 bad resource", syscall(SYS_prlimit64, 0, 999, NULL, &rl));
    show("getrlimit bad resource", syscall(SYS_getrlimit, 999, &rl));
    show("prlimit64 RLIMIT_STACK", syscall(SYS_prlimit64, 0, RLIMIT_STACK, NULL, &rl));
    printf("%-34s %d\n", "stack soft <= hard", rl.rlim_cur <= rl.rlim_max);
    struct rlimit inverted = {2, 1};
    show("prlimit64 soft > hard", syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &inverted, NULL));
    show("getrlimit bad pointer", syscall(SYS_getrlimit, RLIMIT_NOFILE, (void *)8));

    /* scheduler */
    unsigned char mask[128];
    show("sched_getaffinity size 1", syscall(SYS_sched_getaffinity, 0, 1, mask));
    long n = syscall(SYS_sched_getaffinity, 0, sizeof mask, mask);
    printf("%-34s %d\n", "sched_getaffinity size ok", n > 0 && n <= (long)sizeof mask && n % 8 == 0);

    /* futex */
    uint32_t word = 5;
    struct timespec ms = {0, 1000000};
    show("futex wait wrong value", syscall(SYS_futex, &word, FUTEX_WAIT, 6, NULL, NULL, 0));
    show("futex wait timeout", syscall(SYS_futex, &word, FUTEX_WAIT, 5, &ms, NULL, 0));
    show("futex wake nobody", syscall(SYS_futex, &word, FUTEX_WAKE, 1, NULL, NULL, 0));
    show("futex private wake", syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0));
    show("futex unaligned", syscall(SYS_futex, (char *)&word + 1, FUTEX_WAIT, 5, &ms, NULL, 0));
    show("futex bad op", syscall(SYS_futex, &word, 99, 1, NULL, NULL, 0));
    struct timespec badts = {0, 2000000000};
    show("futex bad timeout", syscall(SYS_futex, &word, FUTEX_WAIT, 5, &badts, NULL, 0));
    show("futex bad address", syscall(SYS_futex, (void *)8, FUTEX_WAIT, 5, &ms, NULL, 0));

    /* poll */
    struct pollfd pf[2] = {{1, POLLOUT, 0}, {99, POLLIN, 0}};
    long pr = syscall(SYS_poll, pf, 2, 1000);
    printf("%-34s %ld out %d nval %d\n", "poll stdout+bad", pr,
           (pf[0].revents & POLLOUT) != 0, pf[1].revents == POLLNVAL);
    struct pollfd neg = {-1, POLLIN, 77};
    show("poll negative fd", syscall(SYS_poll, &neg, 1, 0));
    printf("%-34s %d\n", "negative fd revents", neg.revents);
    show("poll nothing 10ms", syscall(SYS_poll, NULL, 0, 10));
    show("poll huge nfds", syscall(SYS_poll, pf, 1UL << 30, 0));
    show("poll bad pointer", syscall(SYS_poll, (void *)8, 1, 0));

    /* misc */
    show("uname bad pointer", syscall(SYS_uname, (void *)8));
    show("getrandom bad flags", syscall(SYS_getrandom, buf, 4, 0x100));
    show("clock_gettime bad clock", syscall(SYS_clock_gettime, 12345, (void *)buf));
    show("arch_prctl bad code", syscall(SYS_arch_prctl, 0x9999, 0));
    show("set_robust_list bad len", syscall(SYS_set_robust_list, NULL, 1));
    return 0;
}
