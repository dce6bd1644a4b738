/* clone3(2), CLONE_PIDFD and waitid(P_PIDFD), with glibc's own clone3 users
   (posix_spawn, pthread_create): issue 14. Prints one line per case. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x1000
#endif
#define CLONE_CLEAR_SIGHAND_ 0x100000000ULL
#define CLONE_INTO_CGROUP_ 0x200000000ULL
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

struct args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
        set_tid, set_tid_size, cgroup;
};

extern char **environ;

static const char *en(int e) {
    switch (e) {
    case 0: return "0";
    case EINVAL: return "EINVAL";
    case E2BIG: return "E2BIG";
    case EFAULT: return "EFAULT";
    case EPERM: return "EPERM";
    case EEXIST: return "EEXIST";
    case EBADF: return "EBADF";
    case ECHILD: return "ECHILD";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: return strerrorname_np(e) ? strerrorname_np(e) : "?";
    }
}

static long c3(struct args *a, size_t size) {
    long r = syscall(SYS_clone3, a, size);
    if (r == 0) _exit(7);
    return r;
}

static void try_c3(const char *what, struct args *a, size_t size) {
    errno = 0;
    long r = c3(a, size);
    if (r > 0) {
        int st;
        waitpid(r, &st, __WALL);
        printf("%s: child, exit %d\n", what, WEXITSTATUS(st));
    } else {
        printf("%s: %ld %s\n", what, r, en(errno));
    }
}

static void *thread_fn(void *p) { return (char *)p + 1; }

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct args a;
    unsigned char big[200];

    /* a plain fork through clone3, with a pidfd and waitid(P_PIDFD) */
    int pidfd = -1;
    memset(&a, 0, sizeof a);
    a.flags = CLONE_PIDFD;
    a.pidfd = (uintptr_t)&pidfd;
    a.exit_signal = SIGCHLD;
    long pid = syscall(SYS_clone3, &a, sizeof a);
    if (pid == 0) _exit(5);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r = waitid(P_PIDFD, pidfd, &si, WEXITED);
    printf("clone3 pidfd: fd>2 %d, waitid %d, same pid %d, code %d status %d\n", pidfd > 2, r,
           si.si_pid == pid, si.si_code, si.si_status);
    errno = 0;
    r = waitid(P_PIDFD, pidfd, &si, WEXITED | WNOHANG);
    printf("waitid again: %d %s\n", r, en(errno));
    errno = 0;
    r = waitid(P_PIDFD, 0, &si, WEXITED);
    printf("waitid P_PIDFD of stdin: %d %s\n", r, en(errno));

    /* legacy clone with CLONE_PIDFD: the fd comes back through parent_tid */
    int pfd2 = -1;
    pid = syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, 0, &pfd2, 0, 0);
    if (pid == 0) _exit(6);
    memset(&si, 0, sizeof si);
    r = waitid(P_PIDFD, pfd2, &si, WEXITED);
    printf("clone pidfd: fd>2 %d, waitid %d, status %d\n", pfd2 > 2, r, si.si_status);
    errno = 0;
    pid = syscall(SYS_clone, CLONE_PIDFD | CLONE_PARENT_SETTID | SIGCHLD, 0, &pfd2, 0, 0);
    if (pid == 0) _exit(0);
    printf("clone PIDFD|PARENT_SETTID: %ld %s\n", pid, en(errno));

    /* sizes */
    memset(&a, 0, sizeof a);
    a.exit_signal = SIGCHLD;
    try_c3("size 0", &a, 0);
    try_c3("size 63", &a, 63);
    try_c3("size 64", &a, 64);
    memset(big, 0, sizeof big);
    memcpy(big, &a, sizeof a);
    try_c3("size 200 zero tail", (struct args *)big, 200);
    big[150] = 1;
    try_c3("size 200 nonzero tail", (struct args *)big, 200);
    try_c3("size 5000", &a, 5000);
    errno = 0;
    pid = syscall(SYS_clone3, (void *)8, 64);
    printf("bad pointer: %ld %s\n", pid, en(errno));

    /* flags */
    struct {
        const char *what;
        uint64_t flags, sig, stack, stack_size;
    } cases[] = {
        {"CLONE_DETACHED", 0x00400000, SIGCHLD, 0, 0},
        {"CSIGNAL bits", SIGCHLD, 0, 0, 0},
        {"exit signal 65", 0, 65, 0, 0},
        {"exit signal 256", 0, 256, 0, 0},
        {"unknown high flag", 1ULL << 40, SIGCHLD, 0, 0},
        {"SIGHAND|CLEAR_SIGHAND", CLONE_SIGHAND | CLONE_VM | CLONE_CLEAR_SIGHAND_, 0, 0, 0},
        {"THREAD with exit signal", CLONE_THREAD | CLONE_SIGHAND | CLONE_VM, SIGCHLD, 0, 0},
        {"PARENT with exit signal", CLONE_PARENT, SIGCHLD, 0, 0},
        {"stack without size", 0, SIGCHLD, 4096, 0},
        {"size without stack", 0, SIGCHLD, 0, 4096},
        {"SIGHAND without VM", CLONE_SIGHAND, SIGCHLD, 0, 0},
        {"NEWNS|FS", CLONE_NEWNS | CLONE_FS, SIGCHLD, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&a, 0, sizeof a);
        a.flags = cases[i].flags;
        a.exit_signal = cases[i].sig;
        a.stack = cases[i].stack;
        a.stack_size = cases[i].stack_size;
        a.pidfd = (uintptr_t)&pidfd;
        try_c3(cases[i].what, &a, sizeof a);
    }

    /* set_tid */
    pid_t set[2] = {getpid(), 0};
    memset(&a, 0, sizeof a);
    a.exit_signal = SIGCHLD;
    a.set_tid = (uintptr_t)set;
    a.set_tid_size = 1;
    try_c3("set_tid in use", &a, sizeof a);
    a.set_tid = 0;
    try_c3("set_tid_size without array", &a, sizeof a);
    a.set_tid = (uintptr_t)set;
    a.set_tid_size = 0;
    try_c3("set_tid without size", &a, sizeof a);
    set[0] = -5;
    a.set_tid_size = 1;
    try_c3("set_tid negative", &a, sizeof a);
    a.set_tid_size = 40;
    try_c3("set_tid_size 40", &a, sizeof a);

    /* cgroup: a bad descriptor, and too small a struct for the field */
    memset(&a, 0, sizeof a);
    a.flags = CLONE_INTO_CGROUP_;
    a.exit_signal = SIGCHLD;
    a.cgroup = 1000;
    try_c3("INTO_CGROUP bad fd", &a, sizeof a);
    try_c3("INTO_CGROUP size 80", &a, 80);

    /* CLONE_CLEAR_SIGHAND: handlers go back to SIG_DFL, ignored stays ignored */
    signal(SIGUSR1, (void (*)(int))thread_fn);
    signal(SIGUSR2, SIG_IGN);
    memset(&a, 0, sizeof a);
    a.flags = CLONE_CLEAR_SIGHAND_;
    a.exit_signal = SIGCHLD;
    pid = syscall(SYS_clone3, &a, sizeof a);
    if (pid == 0) {
        struct sigaction s1, s2;
        sigaction(SIGUSR1, NULL, &s1);
        sigaction(SIGUSR2, NULL, &s2);
        _exit((s1.sa_handler == SIG_DFL) | (s2.sa_handler == SIG_IGN) << 1);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("CLEAR_SIGHAND: child saw %d (3: default and ignored)\n", WEXITSTATUS(st));

    /* glibc's users of clone3 */
    pid_t sp;
    char *argv[] = {"true", NULL};
    r = posix_spawn(&sp, "/bin/true", NULL, NULL, argv, environ);
    waitpid(sp, &st, 0);
    printf("posix_spawn: %d, exit %d\n", r, WEXITSTATUS(st));
    char *argv2[] = {"false", NULL};
    r = posix_spawnp(&sp, "false", NULL, NULL, argv2, environ);
    waitpid(sp, &st, 0);
    printf("posix_spawnp false: %d, exit %d\n", r, WEXITSTATUS(st));
    r = posix_spawn(&sp, "/nonexistent/x", NULL, NULL, argv, environ);
    printf("posix_spawn missing: %s\n", en(r));
    pthread_t th[4];
    char buf[4];
    void *ret;
    int ok = 1;
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, thread_fn, buf + i);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], &ret);
        ok &= ret == buf + i + 1;
    }
    printf("pthreads: %d\n", ok);
    return 0;
}
