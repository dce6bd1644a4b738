/* A ptrace tracer: what a debugger and strace do, printed so the output can
 * be compared natively and in the sandbox (no addresses or pids printed).
 *   traceme:  fork + PTRACE_TRACEME + raise(SIGSTOP); PEEK/POKE of a variable
 *   regs:     GETREGS/SETREGS at a syscall-exit-stop change getpid's result
 *   count:    PTRACE_SYSCALL counts a child's write calls (enter and exit stops)
 *   fork:     PTRACE_O_TRACEFORK: the event, the message, the auto-attached child
 *   exec:     PTRACE_O_TRACEEXEC: the exec event; without it, SIGTRAP
 *   errors:   errnos for bad requests and targets
 *   siginfo:  a signal-delivery-stop's siginfo, the signal suppressed or changed */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile long target_word = 0x1122334455667788L;

static void show(const char *what, int status) {
    if (WIFSTOPPED(status))
        printf("%s: stopped sig=%d event=%d\n", what, WSTOPSIG(status), status >> 16);
    else if (WIFEXITED(status))
        printf("%s: exited %d\n", what, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        printf("%s: killed sig=%d\n", what, WTERMSIG(status));
    else
        printf("%s: status %#x\n", what, status);
    fflush(stdout);
}

static void report(const char *what, long r) {
    printf("%s: %ld errno %d\n", what, r, r == -1 ? errno : 0);
}

static pid_t traced_child(void (*body)(void)) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0)
            _exit(90);
        raise(SIGSTOP);
        body();
        _exit(0);
    }
    return pid;
}

static void body_peek(void) {
    printf("child sees %#lx\n", target_word);
    fflush(stdout);
    _exit(target_word == 0x0badcafe ? 3 : 4);
}

static int test_traceme(void) {
    int st;
    pid_t pid = traced_child(body_peek);
    waitpid(pid, &st, 0);
    show("first stop", st);
    errno = 0;
    long w = ptrace(PTRACE_PEEKDATA, pid, (void *)&target_word, 0);
    printf("peek %#lx errno %d\n", w, errno);
    printf("poke %ld\n", ptrace(PTRACE_POKEDATA, pid, (void *)&target_word, (void *)0x0badcafeL));
    w = ptrace(PTRACE_PEEKDATA, pid, (void *)&target_word, 0);
    printf("peek again %#lx\n", w);
    errno = 0;
    ptrace(PTRACE_PEEKDATA, pid, (void *)8, 0);
    printf("peek at 8: errno %d\n", errno);
    /* POKETEXT into this program's own text: the child's private copy only */
    long *code = (long *)(void *)&show;
    long orig = ptrace(PTRACE_PEEKTEXT, pid, code, 0);
    printf("poketext %ld\n", ptrace(PTRACE_POKETEXT, pid, code, (void *)(orig ^ 0)));
    printf("text same %d\n", ptrace(PTRACE_PEEKTEXT, pid, code, 0) == *code);
    ptrace(PTRACE_CONT, pid, 0, 0);
    waitpid(pid, &st, 0);
    show("end", st);
    return 0;
}

static void body_getpid(void) {
    long r = syscall(SYS_getpid);
    printf("child getpid returned %ld\n", r);
    r = syscall(SYS_getppid); /* made into gettid at its enter stop */
    printf("getppid gave my own id: %d\n", r == getpid());
    r = syscall(SYS_exit_group, 9); /* skipped (orig_rax -1), rax 77 */
    printf("skipped exit_group returned %ld\n", r);
    fflush(stdout);
}

static int test_regs(void) {
    int st;
    pid_t pid = traced_child(body_getpid);
    waitpid(pid, &st, 0);
    ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)PTRACE_O_TRACESYSGOOD);
    int changed = 0;
    for (;;) {
        ptrace(PTRACE_SYSCALL, pid, 0, 0);
        waitpid(pid, &st, 0);
        if (!WIFSTOPPED(st))
            break;
        if (WSTOPSIG(st) != (SIGTRAP | 0x80))
            continue;
        struct user_regs_struct r;
        ptrace(PTRACE_GETREGS, pid, 0, &r);
        struct {
            uint8_t op, pad[3];
            uint32_t arch;
            uint64_t ip, sp;
            union {
                struct { uint64_t nr, args[6]; } entry;
                struct { int64_t rval; uint8_t is_error; } exit;
            } u;
        } info;
        memset(&info, 0, sizeof info);
        long isz = ptrace((enum __ptrace_request)0x420e, pid, (void *)sizeof info, &info);
        if (r.orig_rax == SYS_getpid && !changed)
            printf("syscall info size %ld op %d arch %#x nr-or-rval-ok %d\n", isz, info.op,
                   info.arch, info.op == 1 ? info.u.entry.nr == SYS_getpid
                                           : info.u.exit.rval == (long)r.rax);
        if (r.orig_rax == SYS_getpid && (long)r.rax != -ENOSYS && !changed) {
            printf("exit stop of getpid, rax == pid: %d\n", (pid_t)r.rax == pid);
            r.rax = 4242;
            printf("setregs %ld\n", ptrace(PTRACE_SETREGS, pid, 0, &r));
            changed = 1;
        } else if (r.orig_rax == SYS_getpid && (long)r.rax == -ENOSYS) {
            printf("enter stop of getpid, rax %ld\n", (long)r.rax);
        } else if (r.orig_rax == SYS_getppid && (long)r.rax == -ENOSYS) {
            r.orig_rax = SYS_gettid;
            printf("getppid -> gettid: %ld\n", ptrace(PTRACE_SETREGS, pid, 0, &r));
        } else if (r.orig_rax == SYS_exit_group && (long)r.rax == -ENOSYS) {
            r.orig_rax = -1;
            r.rax = 77;
            printf("skip exit_group: %ld\n", ptrace(PTRACE_SETREGS, pid, 0, &r));
        }
    }
    show("end", st);
    return 0;
}

static void body_writes(void) {
    for (int i = 0; i < 5; i++)
        write(1, "w\n", 2);
}

static int test_count(void) {
    int st, stops = 0, writes = 0, in = 0;
    pid_t pid = traced_child(body_writes);
    waitpid(pid, &st, 0);
    ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)PTRACE_O_TRACESYSGOOD);
    for (;;) {
        ptrace(PTRACE_SYSCALL, pid, 0, 0);
        waitpid(pid, &st, 0);
        if (!WIFSTOPPED(st))
            break;
        if (WSTOPSIG(st) != (SIGTRAP | 0x80))
            continue;
        stops++;
        struct user_regs_struct r;
        ptrace(PTRACE_GETREGS, pid, 0, &r);
        in = !in;
        if (r.orig_rax == SYS_write && in)
            writes++;
    }
    printf("write calls %d, stops even %d\n", writes, stops % 2 == 0);
    show("end", st);
    return 0;
}

static void body_fork(void) {
    pid_t c = fork();
    if (c == 0)
        _exit(7);
    int st;
    waitpid(c, &st, 0);
    printf("grandchild exit %d\n", WEXITSTATUS(st));
    fflush(stdout);
}

static int test_fork(void) {
    int st;
    pid_t pid = traced_child(body_fork);
    waitpid(pid, &st, 0);
    ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)PTRACE_O_TRACEFORK);
    ptrace(PTRACE_CONT, pid, 0, 0);
    waitpid(pid, &st, 0);
    show("parent", st);
    unsigned long msg = 0;
    ptrace(PTRACE_GETEVENTMSG, pid, 0, &msg);
    pid_t gc = (pid_t)msg;
    printf("eventmsg is a pid: %d\n", gc > 0 && gc != pid);
    waitpid(gc, &st, __WALL);
    show("new child", st);
    ptrace(PTRACE_CONT, gc, 0, 0);
    ptrace(PTRACE_CONT, pid, 0, 0);
    waitpid(gc, &st, __WALL);
    show("new child end", st);
    for (;;) { /* the new child's exit brings a SIGCHLD signal-delivery-stop */
        waitpid(pid, &st, 0);
        if (!WIFSTOPPED(st))
            break;
        show("parent stop", st);
        ptrace(PTRACE_CONT, pid, 0, (void *)(long)WSTOPSIG(st));
    }
    show("end", st);
    return 0;
}

static const char *self_path;

static void body_exec(void) {
    execl(self_path, self_path, "none", (char *)0);
    _exit(99);
}

static int test_exec(int with_option) {
    int st;
    pid_t pid = traced_child(body_exec);
    waitpid(pid, &st, 0);
    if (with_option)
        ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)PTRACE_O_TRACEEXEC);
    ptrace(PTRACE_CONT, pid, 0, 0);
    waitpid(pid, &st, 0);
    show(with_option ? "exec event" : "after exec", st);
    if (with_option) {
        unsigned long msg = 0;
        ptrace(PTRACE_GETEVENTMSG, pid, 0, &msg);
        printf("eventmsg == pid: %d\n", (pid_t)msg == pid);
    }
    ptrace(PTRACE_CONT, pid, 0, 0);
    waitpid(pid, &st, 0);
    show("end", st);
    return 0;
}

static void body_signal(void) {
    raise(SIGUSR1); /* suppressed by the tracer */
    printf("survived SIGUSR1\n");
    fflush(stdout);
    raise(SIGUSR2); /* changed into SIGTERM by the tracer */
    printf("not reached\n");
}

static int test_siginfo(void) {
    int st;
    pid_t pid = traced_child(body_signal);
    waitpid(pid, &st, 0);
    ptrace(PTRACE_CONT, pid, 0, 0);
    siginfo_t wi;
    memset(&wi, 0, sizeof wi);
    report("waitid", waitid(P_PID, pid, &wi, WEXITED | WSTOPPED | WNOWAIT));
    printf("waitid code %d status %d pid ok %d\n", wi.si_code, wi.si_status, wi.si_pid == pid);
    waitpid(pid, &st, 0);
    show("signal stop", st);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    long r = ptrace(PTRACE_GETSIGINFO, pid, 0, &si);
    printf("getsiginfo %ld signo %d code %d\n", r, si.si_signo, si.si_code);
    ptrace(PTRACE_CONT, pid, 0, 0);
    waitpid(pid, &st, 0);
    show("signal stop", st);
    ptrace(PTRACE_CONT, pid, 0, (void *)SIGTERM);
    waitpid(pid, &st, 0);
    show("end", st);
    return 0;
}

static void body_step(void) {
    volatile long x = 0;
    for (int i = 0; i < 3; i++)
        x += i;
    getppid();
    x++;
}

static int test_step(void) {
    int st;
    pid_t pid = traced_child(body_step);
    waitpid(pid, &st, 0);
    struct user_regs_struct r;
    ptrace(PTRACE_GETREGS, pid, 0, &r);
    unsigned long last = r.rip;
    int moved = 0, traps = 0, n;
    for (n = 0; n < 400; n++) {
        if (ptrace(PTRACE_SINGLESTEP, pid, 0, 0) != 0)
            break;
        waitpid(pid, &st, 0);
        if (!WIFSTOPPED(st))
            break;
        traps += WSTOPSIG(st) == SIGTRAP;
        ptrace(PTRACE_GETREGS, pid, 0, &r);
        moved += r.rip != last;
        last = r.rip;
    }
    printf("steps %d: every stop a SIGTRAP %d, every step moved %d\n", n, traps == n,
           moved == n);
    ptrace(PTRACE_CONT, pid, 0, 0);
    waitpid(pid, &st, 0);
    show("end", st);
    return 0;
}

static void body_sleep(void);

static void status_lines(pid_t pid, int state) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("no %s\n", path);
        return;
    }
    while (fgets(line, sizeof line, f)) {
        if (state && !strncmp(line, "State:", 6))
            printf("%s", line);
        if (!strncmp(line, "TracerPid:", 10))
            printf("TracerPid is me: %d\n", atoi(line + 10) == getpid());
    }
    fclose(f);
}

static void spin_forever(void) {
    for (;;)
        pause(); /* attach and interrupt must end the wait */
}

static int test_attach(void) {
    int st;
    int ready[2];
    char c;
    if (pipe(ready) != 0)
        return 1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        target_word = 77;
        write(ready[1], "r", 1);
        spin_forever();
    }
    if (read(ready[0], &c, 1) != 1)
        return 1;
    report("attach", ptrace(PTRACE_ATTACH, pid, 0, 0));
    waitpid(pid, &st, 0);
    show("attach stop", st);
    status_lines(pid, 1);
    long w = ptrace(PTRACE_PEEKDATA, pid, (void *)&target_word, 0);
    printf("peek %ld\n", w);
    report("detach", ptrace(PTRACE_DETACH, pid, 0, 0));
    status_lines(pid, 0);
    errno = 0;
    report("peek after detach", ptrace(PTRACE_PEEKDATA, pid, (void *)&target_word, 0));
    /* seize: no SIGSTOP; PTRACE_INTERRUPT stops it with PTRACE_EVENT_STOP */
    report("seize", ptrace(PTRACE_SEIZE, pid, 0, (void *)PTRACE_O_EXITKILL));
    report("interrupt", ptrace(PTRACE_INTERRUPT, pid, 0, 0));
    waitpid(pid, &st, 0);
    show("interrupt stop", st);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    report("getsiginfo", ptrace(PTRACE_GETSIGINFO, pid, 0, &si));
    printf("signo %d code %#x\n", si.si_signo, si.si_code);
    report("kill", ptrace(PTRACE_KILL, pid, 0, 0));
    waitpid(pid, &st, 0);
    show("end", st);
    return 0;
}

static int test_exitkill(void) {
    /* A tracer that exits with PTRACE_O_EXITKILL takes its running tracee
     * with it: the tracee holds the only write end of "alive" left, so the
     * read here ends when the tracee is gone. */
    int st, pfd[2], alive[2];
    if (pipe(pfd) != 0 || pipe(alive) != 0)
        return 1;
    fflush(stdout);
    pid_t tracer = fork();
    if (tracer == 0) {
        pid_t g = traced_child(body_sleep);
        close(alive[1]);
        waitpid(g, &st, 0);
        ptrace(PTRACE_SETOPTIONS, g, 0, (void *)PTRACE_O_EXITKILL);
        ptrace(PTRACE_CONT, g, 0, 0); /* it waits in pause() */
        write(pfd[1], &g, sizeof g);
        _exit(0);
    }
    close(alive[1]);
    pid_t g = 0;
    if (read(pfd[0], &g, sizeof g) != sizeof g)
        return 1;
    waitpid(tracer, &st, 0);
    show("tracer", st);
    char c;
    printf("tracee gone: read %zd\n", read(alive[0], &c, 1));
    return 0;
}

static int test_fuzz(void) {
    /* Every request with hostile addresses and data at a stopped tracee, except
     * those that resume or end it: only that each call returns matters. */
    static const long skip[] = {PTRACE_CONT, PTRACE_KILL, PTRACE_SINGLESTEP, PTRACE_DETACH,
                                PTRACE_SYSCALL, 31, 32, PTRACE_LISTEN, PTRACE_TRACEME};
    static long buf[1024];
    const unsigned long vals[] = {0, 8, (unsigned long)buf, ~0UL, 0x7ffffffff000UL, 4096, 1};
    int st, calls = 0;
    pid_t pid = traced_child(body_sleep);
    waitpid(pid, &st, 0);
    for (long req = 0; req < 0x4220; req++) {
        if (req == 64)
            req = 0x4200;
        int skipped = 0;
        for (unsigned i = 0; i < sizeof skip / sizeof *skip; i++)
            skipped |= skip[i] == req;
        if (skipped)
            continue;
        for (unsigned a = 0; a < sizeof vals / sizeof *vals; a++)
            for (unsigned d = 0; d < sizeof vals / sizeof *vals; d++) {
                memset(buf, 0, sizeof buf);
                syscall(SYS_ptrace, req, pid, vals[a], vals[d]);
                calls++;
            }
    }
    printf("fuzz calls %d\n", calls);
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    show("end", st);
    return 0;
}

static int test_procmem(void) {
    /* /proc/PID/mem of a stopped tracee: what gdb reads and writes */
    int st;
    pid_t pid = traced_child(body_peek);
    waitpid(pid, &st, 0);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", pid);
    int fd = open(path, O_RDWR);
    printf("open %d\n", fd >= 0);
    long v = 0;
    printf("pread %zd\n", pread(fd, &v, sizeof v, (off_t)(uintptr_t)&target_word));
    printf("value %#lx\n", v);
    v = 0x0badcafe;
    printf("pwrite %zd\n", pwrite(fd, &v, sizeof v, (off_t)(uintptr_t)&target_word));
    long code = 0;
    printf("pread text %zd\n", pread(fd, &code, sizeof code, (off_t)(uintptr_t)&show));
    printf("pwrite text %zd\n", pwrite(fd, &code, sizeof code, (off_t)(uintptr_t)&show));
    errno = 0;
    report("pread at 0", (long)pread(fd, &v, sizeof v, 0));
    close(fd);
    ptrace(PTRACE_CONT, pid, 0, 0);
    waitpid(pid, &st, 0);
    show("end", st);
    return 0;
}

static int test_listen(void) {
    /* A seized tracee's group-stop: PTRACE_LISTEN keeps it stopped until SIGCONT */
    int st, ready[2];
    char c;
    if (pipe(ready) != 0)
        return 1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        write(ready[1], "r", 1);
        spin_forever();
    }
    if (read(ready[0], &c, 1) != 1)
        return 1;
    report("seize", ptrace(PTRACE_SEIZE, pid, 0, 0));
    kill(pid, SIGSTOP);
    waitpid(pid, &st, 0);
    show("signal stop", st);
    ptrace(PTRACE_CONT, pid, 0, (void *)SIGSTOP);
    waitpid(pid, &st, 0);
    show("group stop", st);
    siginfo_t si;
    errno = 0;
    report("getsiginfo in group stop", ptrace(PTRACE_GETSIGINFO, pid, 0, &si));
    report("listen", ptrace(PTRACE_LISTEN, pid, 0, 0));
    kill(pid, SIGCONT);
    waitpid(pid, &st, 0);
    show("after SIGCONT", st);
    ptrace(PTRACE_CONT, pid, 0, 0);
    waitpid(pid, &st, 0);
    show("next", st);
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    show("end", st);
    return 0;
}

static void body_exit(void) { _exit(6); }

static int test_exit_event(void) {
    int st;
    pid_t pid = traced_child(body_exit);
    waitpid(pid, &st, 0);
    ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)PTRACE_O_TRACEEXIT);
    ptrace(PTRACE_CONT, pid, 0, 0);
    waitpid(pid, &st, 0);
    show("exit event", st);
    unsigned long msg = 0;
    ptrace(PTRACE_GETEVENTMSG, pid, 0, &msg);
    printf("eventmsg exit status %lu\n", msg >> 8);
    ptrace(PTRACE_CONT, pid, 0, 0);
    waitpid(pid, &st, 0);
    show("end", st);
    return 0;
}

static void body_sleep(void) { pause(); }

static int test_errors(void) {
    int st;
    errno = 0;
    report("attach self", ptrace(PTRACE_ATTACH, getpid(), 0, 0));
    errno = 0;
    report("peek no such pid", ptrace(PTRACE_PEEKDATA, 999999, 0, 0));
    errno = 0;
    report("cont no such pid", ptrace(PTRACE_CONT, -5, 0, 0));
    pid_t plain = fork();
    if (plain == 0) {
        pause();
        _exit(0);
    }
    errno = 0;
    report("cont untraced", ptrace(PTRACE_CONT, plain, 0, 0));
    kill(plain, SIGKILL);
    waitpid(plain, &st, 0);
    /* another user's process: EPERM without CAP_SYS_PTRACE */
    pid_t victim = fork();
    if (victim == 0) {
        if (setuid(65534) != 0)
            _exit(1);
        pause();
        _exit(0);
    }
    fflush(stdout);
    pid_t other = fork();
    if (other == 0) {
        if (setuid(65533) != 0)
            _exit(1);
        errno = 0;
        report("attach other uid", ptrace(PTRACE_ATTACH, victim, 0, 0));
        errno = 0;
        report("seize other uid", ptrace(PTRACE_SEIZE, victim, 0, 0));
        fflush(stdout);
        _exit(0);
    }
    waitpid(other, &st, 0);
    kill(victim, SIGKILL);
    waitpid(victim, &st, 0);
    pid_t pid = traced_child(body_sleep);
    waitpid(pid, &st, 0);
    errno = 0;
    report("bad request", ptrace((enum __ptrace_request)0x9999, pid, 0, 0));
    errno = 0;
    report("bad options", ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)0x1000));
    errno = 0;
    report("peekuser odd", ptrace(PTRACE_PEEKUSER, pid, (void *)3, 0));
    errno = 0;
    report("getregs bad ptr", ptrace(PTRACE_GETREGS, pid, 0, (void *)8));
    {
        unsigned char buf[128];
        report("syscall info at signal stop",
               ptrace((enum __ptrace_request)0x420e, pid, (void *)sizeof buf, buf));
        printf("op %d\n", buf[0]);
        struct iovec iov = {buf, sizeof buf};
        errno = 0;
        report("getregset bad note", ptrace(PTRACE_GETREGSET, pid, (void *)0x999, &iov));
        errno = 0;
        report("getregset bad iov", ptrace(PTRACE_GETREGSET, pid, (void *)1, (void *)16));
        iov.iov_len = 8;
        report("getregset short", ptrace(PTRACE_GETREGSET, pid, (void *)1, &iov));
        printf("short len %zu\n", iov.iov_len);
        errno = 0;
        report("peekuser past struct user", ptrace(PTRACE_PEEKUSER, pid, (void *)4096, 0));
        errno = 0;
        report("pokeuser past struct user",
               ptrace(PTRACE_POKEUSER, pid, (void *)4096, (void *)1));
        errno = 0;
        report("poke unmapped", ptrace(PTRACE_POKEDATA, pid, (void *)16, (void *)1));
        errno = 0;
        report("setsiginfo bad ptr", ptrace(PTRACE_SETSIGINFO, pid, 0, (void *)8));
        errno = 0;
        report("cont bad signal", ptrace(PTRACE_CONT, pid, 0, (void *)1000));
        errno = 0;
        report("seize with addr", ptrace(PTRACE_SEIZE, pid, (void *)1, 0));
    }
    errno = 0;
    report("attach traced", ptrace(PTRACE_ATTACH, pid, 0, 0));
    errno = 0;
    report("interrupt unseized", ptrace(PTRACE_INTERRUPT, pid, 0, 0));
    ptrace(PTRACE_CONT, pid, 0, 0);
    errno = 0;
    report("peek running", ptrace(PTRACE_PEEKDATA, pid, 0, 0));
    printf("kill %ld\n", ptrace(PTRACE_KILL, pid, 0, 0));
    waitpid(pid, &st, 0);
    show("end", st);
    return 0;
}

int main(int argc, char **argv) {
    self_path = argv[0];
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *t = argc > 1 ? argv[1] : "";
    if (!strcmp(t, "none"))
        return 5;
    if (!strcmp(t, "all")) {
        const char *all[] = {"traceme", "regs", "count", "fork", "exec", "exec_sigtrap",
                             "siginfo", "step", "attach", "listen", "exit_event", "exitkill", "procmem", "errors"};
        for (unsigned i = 0; i < sizeof all / sizeof *all; i++) {
            printf("== %s\n", all[i]);
            fflush(stdout);
            pid_t p = fork();
            if (p == 0) {
                char *args[] = {argv[0], (char *)all[i], 0};
                execv(argv[0], args);
                _exit(98);
            }
            int st;
            waitpid(p, &st, 0);
            show("test", st);
        }
        return 0;
    }
    if (!strcmp(t, "traceme"))
        return test_traceme();
    if (!strcmp(t, "regs"))
        return test_regs();
    if (!strcmp(t, "count"))
        return test_count();
    if (!strcmp(t, "fork"))
        return test_fork();
    if (!strcmp(t, "exec"))
        return test_exec(1);
    if (!strcmp(t, "exec_sigtrap"))
        return test_exec(0);
    if (!strcmp(t, "siginfo"))
        return test_siginfo();
    if (!strcmp(t, "attach"))
        return test_attach();
    if (!strcmp(t, "attach_pid") && argc > 2) { /* a pid named from outside */
        pid_t p = (pid_t)atol(argv[2]);
        errno = 0;
        report("attach", ptrace(PTRACE_ATTACH, p, 0, 0));
        errno = 0;
        report("seize", ptrace(PTRACE_SEIZE, p, 0, 0));
        errno = 0;
        report("peek", ptrace(PTRACE_PEEKDATA, p, 0, 0));
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/mem", p);
        errno = 0;
        report("open mem", open(path, O_RDONLY));
        return 0;
    }
    if (!strcmp(t, "listen"))
        return test_listen();
    if (!strcmp(t, "procmem"))
        return test_procmem();
    if (!strcmp(t, "fuzz"))
        return test_fuzz();
    if (!strcmp(t, "exitkill"))
        return test_exitkill();
    if (!strcmp(t, "exit_event"))
        return test_exit_event();
    if (!strcmp(t, "step"))
        return test_step();
    if (!strcmp(t, "errors"))
        return test_errors();
    fprintf(stderr, "usage: %s traceme|regs|count|fork|exec|exec_sigtrap|siginfo|errors\n",
            argv[0]);
    return 2;
}
