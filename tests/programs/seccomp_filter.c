/* seccomp filters a program installs on itself: the checks at install time,
 * each action, argument filters, stacking precedence, inheritance by fork and
 * execve, TSYNC, strict mode and /proc/self/status. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#define NR_OFF offsetof(struct seccomp_data, nr)
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i))

static long install(struct sock_filter *f, unsigned short n, unsigned flags) {
    struct sock_fprog prog = {n, f};
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

static void report(const char *what, long r) {
    printf("%s: %s\n", what, r < 0 ? strerrorname_np(errno) : "ok");
    fflush(stdout);
}

/* Return ERRNO(err) for syscall nr, allow the rest. */
static long deny(int nr, unsigned action, unsigned flags) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NR_OFF),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, action),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    return install(f, 4, flags);
}

static long uname_result(void) {
    struct utsname u;
    return uname(&u) < 0 ? -errno : 0;
}

static volatile int trap_code, trap_syscall, trap_errno;
static volatile unsigned trap_arch;
static volatile long trap_rax;

static void on_sigsys(int sig, siginfo_t *si, void *uc_) {
    (void)sig;
    ucontext_t *uc = uc_;
    trap_code = si->si_code;
    trap_syscall = si->si_syscall;
    trap_arch = si->si_arch;
    trap_errno = si->si_errno;
    trap_rax = uc->uc_mcontext.gregs[REG_RAX];
    uc->uc_mcontext.gregs[REG_RAX] = 4242;
}

static void *thread_uname(void *arg) {
    (void)arg;
    long r = uname_result();
    printf("thread uname: %s\n", r ? strerrorname_np((int)-r) : "ok");
    fflush(stdout);
    return NULL;
}

static int thread_go[2], thread_done[2];

static void *waiting_thread(void *arg) {
    (void)arg;
    char c;
    if (read(thread_go[0], &c, 1) != 1)
        return NULL;
    thread_uname(NULL);
    if (write(thread_done[1], "x", 1) != 1)
        return NULL;
    return NULL;
}

static void *killed_thread(void *arg) {
    (void)arg;
    syscall(SYS_getpriority, PRIO_PROCESS, 0);
    printf("killed thread survived\n");
    return NULL;
}

static int wait_child(pid_t pid) {
    int st;
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st))
        printf("child killed by signal %d\n", WTERMSIG(st));
    else
        printf("child exited %d\n", WEXITSTATUS(st));
    fflush(stdout);
    return st;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "after-exec")) {
        long r = uname_result();
        printf("after exec uname: %s\n", r ? strerrorname_np((int)-r) : "ok");
        printf("after exec PR_GET_SECCOMP: %d\n", prctl(PR_GET_SECCOMP));
        return 0;
    }
    unsigned actions[] = {SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_KILL_THREAD, SECCOMP_RET_TRAP,
                          SECCOMP_RET_ERRNO, SECCOMP_RET_TRACE, SECCOMP_RET_LOG,
                          SECCOMP_RET_ALLOW, 0x12340000};
    for (unsigned i = 0; i < sizeof actions / sizeof actions[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "action %#x available", actions[i]);
        report(what, syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &actions[i]));
    }
    report("unknown operation", syscall(SYS_seccomp, 99, 0, NULL));
    report("strict with flags", syscall(SYS_seccomp, SECCOMP_SET_MODE_STRICT, 1, NULL));
    printf("PR_GET_SECCOMP before: %d\n", prctl(PR_GET_SECCOMP));
    fflush(stdout);
    pid_t strict = fork();
    if (strict == 0) {
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT))
            _exit(4);
        static const char msg[] = "strict: write allowed\n";
        if (write(1, msg, sizeof msg - 1) < 0)
            syscall(SYS_exit, 5);
        syscall(SYS_getpid);
        syscall(SYS_exit, 6);
    }
    wait_child(strict);

    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(65534) || setuid(65534))
            _exit(3);
        report("unprivileged without no_new_privs", deny(SYS_uname, SECCOMP_RET_ERRNO | 1, 0));
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        report("unprivileged with no_new_privs", deny(SYS_uname, SECCOMP_RET_ERRNO | 1, 0));
        _exit(0);
    }
    wait_child(pid);

    struct sock_filter ret_allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_filter bad_op[] = {BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 0), ret_allow};
    struct sock_filter unaligned[] = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 2), ret_allow};
    struct sock_filter past_end[] = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 64), ret_allow};
    struct sock_filter far_jump[] = {BPF_JUMP(BPF_JMP | BPF_JA, 5, 0, 0), ret_allow};
    struct sock_filter no_ret[] = {ret_allow, BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0)};
    struct sock_filter mem_unset[] = {BPF_STMT(BPF_LD | BPF_MEM, 3), ret_allow};
    struct sock_filter div_zero[] = {BPF_STMT(BPF_ALU | BPF_DIV | BPF_K, 0), ret_allow};
    report("empty program", install(bad_op, 0, 0));
    report("bad opcode", install(bad_op, 2, 0));
    report("unaligned load", install(unaligned, 2, 0));
    report("load past seccomp_data", install(past_end, 2, 0));
    report("jump past the end", install(far_jump, 2, 0));
    report("no final return", install(no_ret, 2, 0));
    report("memory read before write", install(mem_unset, 2, 0));
    report("division by constant zero", install(div_zero, 2, 0));
    report("unknown flag", install(&ret_allow, 1, 1u << 20));
    report("bad fprog pointer", syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, (void *)8));
    struct sock_fprog badfilter = {1, (struct sock_filter *)8};
    report("bad filter pointer", syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &badfilter));

    /* A thread made before the filters: TSYNC reaches it. */
    if (pipe(thread_go) || pipe(thread_done))
        return 2;
    pthread_t waiter;
    pthread_create(&waiter, NULL, waiting_thread, NULL);

    report("deny uname EPERM", deny(SYS_uname, SECCOMP_RET_ERRNO | EPERM, 0));
    long r = uname_result();
    printf("uname: %s\n", r ? strerrorname_np((int)-r) : "ok");
    report("stack deny uname EIO with TSYNC", deny(SYS_uname, SECCOMP_RET_ERRNO | EIO,
                                                   SECCOMP_FILTER_FLAG_TSYNC));
    r = uname_result();
    printf("uname after stacking: %s\n", r ? strerrorname_np((int)-r) : "ok");
    if (write(thread_go[1], "x", 1) != 1)
        return 2;
    char c;
    if (read(thread_done[0], &c, 1) != 1)
        return 2;
    pthread_join(waiter, NULL);

    /* An argument filter: openat with O_CREAT is EACCES. */
    struct sock_filter creat_filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NR_OFF),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(2)),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, O_CREAT, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    report("argument filter", install(creat_filter, 6, 0));
    int fd = open("/proc/self/status", O_RDONLY);
    report("open read-only", fd);
    char statusbuf[4096] = {0};
    if (fd >= 0 && read(fd, statusbuf, sizeof statusbuf - 1) > 0) {
        char *s = strstr(statusbuf, "Seccomp:");
        char *e = s ? strstr(s, "Speculation") : NULL;
        if (s && e)
            printf("%.*s", (int)(e - s), s);
    }
    report("open O_CREAT", open("/tmp/pyvisor-seccomp-never", O_CREAT | O_WRONLY, 0600));
    printf("PR_GET_SECCOMP: %d\n", prctl(PR_GET_SECCOMP));

    /* Memory, ALU and X in a filter: (nr * 2 + 1) ^ 1 == 2 * SYS_getuid -> ERRNO(ENOTTY). */
    struct sock_filter alu[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NR_OFF),
        BPF_STMT(BPF_ST, 0),
        BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 2),
        BPF_STMT(BPF_ALU | BPF_ADD | BPF_K, 1),
        BPF_STMT(BPF_ALU | BPF_XOR | BPF_K, 1),
        BPF_STMT(BPF_MISC | BPF_TAX, 0),
        BPF_STMT(BPF_LD | BPF_IMM, 2 * SYS_getuid),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_X, 0, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOTTY),
        BPF_STMT(BPF_LD | BPF_MEM, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    report("alu filter", install(alu, 11, 0));
    report("getuid through alu filter", syscall(SYS_getuid));
    report("getgid through alu filter", syscall(SYS_getgid) < 0 ? -1 : 0);

    /* TRAP: SIGSYS with the seccomp fields; the handler sets the result. */
    struct sigaction sa = {0};
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &sa, NULL);
    report("trap getppid", deny(SYS_getppid, SECCOMP_RET_TRAP | 77, 0));
    long got = syscall(SYS_getppid);
    printf("trap: result %ld code %d syscall %d arch %#x errno %d rax %ld\n", got, trap_code,
           trap_syscall, trap_arch, trap_errno, trap_rax);
    report("trace without a tracer", deny(SYS_getpgrp, SECCOMP_RET_TRACE, 0));
    report("getpgrp under TRACE", syscall(SYS_getpgrp));
    report("log getsid", deny(SYS_getsid, SECCOMP_RET_LOG, 0));
    report("getsid under LOG", syscall(SYS_getsid, 0));

    /* Inherited by fork; kept across execve. */
    pid = fork();
    if (pid == 0) {
        long rr = uname_result();
        printf("fork child uname: %s\n", rr ? strerrorname_np((int)-rr) : "ok");
        fflush(stdout);
        execl("/proc/self/exe", argv[0], "after-exec", (char *)NULL);
        _exit(9);
    }
    wait_child(pid);

    /* KILL_THREAD ends one thread; KILL_PROCESS the whole process. */
    pid = fork();
    if (pid == 0) {
        deny(SYS_getpriority, SECCOMP_RET_KILL_THREAD, 0);
        pthread_t k;
        pthread_create(&k, NULL, killed_thread, NULL);
        sleep(1);
        printf("main thread alive after a thread was killed\n");
        fflush(stdout);
        _exit(0);
    }
    wait_child(pid);
    pid = fork();
    if (pid == 0) {
        deny(SYS_getpriority, SECCOMP_RET_KILL_PROCESS, 0);
        pthread_t k;
        pthread_create(&k, NULL, killed_thread, NULL);
        sleep(5);
        printf("process survived KILL_PROCESS\n");
        _exit(0);
    }
    wait_child(pid);
    pid = fork();
    if (pid == 0) {
        deny(SYS_getpriority, SECCOMP_RET_KILL_THREAD, 0);
        syscall(SYS_getpriority, PRIO_PROCESS, 0);
        _exit(0);
    }
    wait_child(pid);

    /* Strict mode (a fresh child without filters cannot: it inherits them;
     * strict after filters is EINVAL). */
    report("strict after filters", syscall(SYS_seccomp, SECCOMP_SET_MODE_STRICT, 0, NULL));
    return 0;
}
