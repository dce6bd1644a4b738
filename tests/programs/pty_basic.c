/* Pseudo-terminals: posix_openpt/grantpt/unlockpt/ptsname, termios, the
 * canonical line discipline, signal characters, window size and SIGWINCH,
 * the controlling terminal and job control.  Prints what it sees; run
 * natively and in the sandbox, the outputs must match.  Nothing printed
 * depends on the pty's index or on timing (every read that could wait is
 * preceded by what makes it ready; alarm() bounds the whole run). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "signal_defaults.h"

#define W(fd, lit) write((fd), (lit), sizeof(lit) - 1)

static void show(const char *label, const char *buf, ssize_t n) {
    printf("%s: %zd \"", label, n);
    for (ssize_t i = 0; i < n; i++) {
        unsigned char c = buf[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') putchar(c);
        else printf("\\x%02x", c);
    }
    printf("\"\n");
}

/* Everything the master has to read within a short quiet period. */
static ssize_t drain(int fd, char *buf, size_t cap) {
    size_t n = 0;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, 300);
        if (r <= 0 || !(p.revents & POLLIN) || n >= cap) break;
        ssize_t k = read(fd, buf + n, cap - n);
        if (k <= 0) break;
        n += k;
    }
    return n;
}

static int open_pair(int *replica, int noctty) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0) { printf("posix_openpt: %s\n", strerror(errno)); exit(1); }
    if (grantpt(m) || unlockpt(m)) { printf("grantpt/unlockpt: %s\n", strerror(errno)); exit(1); }
    char *name = ptsname(m);
    if (!name) { printf("ptsname: %s\n", strerror(errno)); exit(1); }
    *replica = open(name, O_RDWR | (noctty ? O_NOCTTY : 0));
    if (*replica < 0) { printf("open %s: %s\n", name, strerror(errno)); exit(1); }
    return m;
}

static void test_openpt(void) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    char *name = ptsname(m);
    unsigned int n = 0;
    printf("ptsname under /dev/pts/: %d\n", name && strncmp(name, "/dev/pts/", 9) == 0);
    printf("TIOCGPTN matches: %d\n", ioctl(m, TIOCGPTN, &n) == 0 && name && (unsigned)atoi(name + 9) == n);
    int early = open(name, O_RDWR | O_NOCTTY);
    printf("open before unlockpt: %s\n", early < 0 ? strerrorname_np(errno) : "opened");
    printf("grantpt %d unlockpt %d\n", grantpt(m), unlockpt(m));
    int r = open(name, O_RDWR | O_NOCTTY);
    printf("replica open: %d isatty master %d replica %d\n", r >= 0, isatty(m), isatty(r));
    struct stat st;
    printf("replica is chr: %d\n", fstat(r, &st) == 0 && S_ISCHR(st.st_mode));
    int flags = fcntl(r, F_GETFL);
    printf("F_GETFL has no O_NOCTTY: %d\n", !(flags & O_NOCTTY));
    close(r);
    close(m);
}

static void test_termios(void) {
    int r, m = open_pair(&r, 1);
    struct termios t, t2, tm;
    tcgetattr(r, &t);
    printf("iflag %o oflag %o cflag %o lflag %o\n", t.c_iflag, t.c_oflag, t.c_cflag, t.c_lflag);
    printf("cc intr %d quit %d erase %d kill %d eof %d time %d min %d susp %d werase %d\n",
           t.c_cc[VINTR], t.c_cc[VQUIT], t.c_cc[VERASE], t.c_cc[VKILL], t.c_cc[VEOF],
           t.c_cc[VTIME], t.c_cc[VMIN], t.c_cc[VSUSP], t.c_cc[VWERASE]);
    tcgetattr(m, &tm);
    printf("master sees same: %d\n", t.c_iflag == tm.c_iflag && t.c_oflag == tm.c_oflag &&
           t.c_cflag == tm.c_cflag && t.c_lflag == tm.c_lflag &&
           memcmp(t.c_cc, tm.c_cc, 17) == 0);
    t2 = t;
    cfmakeraw(&t2);
    t2.c_cc[VMIN] = 0;
    t2.c_cc[VTIME] = 0;
    printf("tcsetattr raw %d\n", tcsetattr(r, TCSANOW, &t2));
    tcgetattr(m, &tm);
    printf("raw round trip: %d lflag %o\n", tm.c_lflag == t2.c_lflag && tm.c_iflag == t2.c_iflag,
           tm.c_lflag);
    char buf[256];
    printf("raw read, nothing queued: %zd\n", read(r, buf, sizeof buf));
    W(m, "xy\rz");
    usleep(1000);
    ssize_t n = 0;
    for (int i = 0; i < 100 && n < 4; i++) {  /* the host pty queues asynchronously */
        ssize_t k = read(r, buf + n, sizeof buf - n);
        if (k > 0) n += k; else usleep(10000);
    }
    show("raw read", buf, n);
    printf("restore %d\n", tcsetattr(r, TCSAFLUSH, &t));
    int fl = fcntl(r, F_GETFL);
    fcntl(r, F_SETFL, fl | O_NONBLOCK);
    errno = 0;
    n = read(r, buf, sizeof buf);
    printf("nonblocking canonical read: %zd %s\n", n, strerrorname_np(errno));
    fcntl(r, F_SETFL, fl);
    close(r);
    close(m);
}

static void test_canonical(void) {
    int r, m = open_pair(&r, 1);
    char buf[256];
    ssize_t n;
    W(m, "abx\x7f" "c\n");
    n = read(r, buf, sizeof buf);
    show("erase line", buf, n);
    show("erase echo", buf, drain(m, buf, sizeof buf));
    W(m, "junk\x15ok\n");
    show("kill line", buf, read(r, buf, sizeof buf));
    show("kill echo", buf, drain(m, buf, sizeof buf));
    W(m, "one two\x17three\n");
    show("werase line", buf, read(r, buf, sizeof buf));
    drain(m, buf, sizeof buf);
    W(m, "xy\x04");
    show("eof with data", buf, read(r, buf, sizeof buf));
    W(m, "\x04");
    show("eof alone", buf, read(r, buf, sizeof buf));
    show("eof echo", buf, drain(m, buf, sizeof buf));
    W(m, "long line\n");
    show("short read 1", buf, read(r, buf, 4));
    show("short read 2", buf, read(r, buf, sizeof buf));
    W(m, "cr\r");
    show("icrnl", buf, read(r, buf, sizeof buf));
    drain(m, buf, sizeof buf);
    W(m, "tab\there\x01\n");
    read(r, buf, sizeof buf);
    show("echoctl", buf, drain(m, buf, sizeof buf));
    W(r, "out\nput");
    show("onlcr", buf, drain(m, buf, sizeof buf));
    W(m, "two\nlines\n");
    usleep(1000);
    struct pollfd p = {r, POLLIN, 0};
    for (int i = 0; i < 100 && poll(&p, 1, 10) == 0; i++) {}
    int q = -1;
    ioctl(r, FIONREAD, &q);
    printf("FIONREAD: %d\n", q);
    tcflush(r, TCIFLUSH);
    ioctl(r, FIONREAD, &q);
    printf("FIONREAD after tcflush: %d\n", q);
    drain(m, buf, sizeof buf);
    close(r);
    p.fd = m;
    p.events = POLLIN;
    int pr = poll(&p, 1, 1000);
    printf("master poll after replica close: %d hup %d\n", pr, !!(p.revents & POLLHUP));
    errno = 0;
    n = read(m, buf, sizeof buf);
    printf("master read after replica close: %zd %s\n", n, strerrorname_np(errno));
    close(m);
}

static volatile sig_atomic_t got_winch;
static void on_winch(int s) { (void)s; got_winch = 1; }

/* A child in a new session whose controlling terminal is the replica. */
static pid_t child_on_tty(int m, int ready[2], int mode) {
    char name[64];
    ptsname_r(m, name, sizeof name);
    pid_t pid = fork();
    if (pid != 0) return pid;
    close(m);
    close(ready[0]);
    setsid();
    int r = open(name, O_RDWR);  /* no O_NOCTTY: a session leader acquires it */
    if (r < 0) _exit(90);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGWINCH);
    sigprocmask(SIG_BLOCK, &block, &old);
    signal(SIGWINCH, on_winch);
    char ok = 'k';
    write(ready[1], &ok, 1);
    if (mode == 0) {  /* wait in read: ^C kills us */
        char b[16];
        read(r, b, sizeof b);
        _exit(91);
    }
    if (mode == 1) {  /* wait for SIGWINCH, report the new size */
        while (!got_winch) sigsuspend(&old);
        struct winsize ws;
        ioctl(r, TIOCGWINSZ, &ws);
        dprintf(ready[1], "winch %d %d\n", ws.ws_row, ws.ws_col);
        _exit(0);
    }
    /* mode 2: a background group reads its terminal: SIGTTIN stops it */
    int dev = open("/dev/tty", O_RDWR);
    dprintf(ready[1], "devtty with ctty: %s\n", dev >= 0 ? "ok" : strerrorname_np(errno));
    pid_t bg = fork();
    if (bg == 0) {
        setpgid(0, 0);
        char b[16];
        read(r, b, sizeof b);
        _exit(92);
    }
    setpgid(bg, bg);
    int st = 0;
    waitpid(bg, &st, WUNTRACED);
    dprintf(ready[1], "bg reader: stopped %d by %s\n", WIFSTOPPED(st),
            WIFSTOPPED(st) ? sigabbrev_np(WSTOPSIG(st)) : "-");
    kill(bg, SIGKILL);
    waitpid(bg, &st, 0);
    _exit(0);
}

static void test_signals(void) {
    int r, m = open_pair(&r, 1);
    close(r);
    int ready[2];
    char buf[256];
    pipe(ready);
    pid_t pid = child_on_tty(m, ready, 0);
    close(ready[1]);
    read(ready[0], buf, 1);
    pid_t fg = tcgetpgrp(m);
    printf("foreground is the child: %d\n", fg == pid);
    pid_t sid = -1;
    ioctl(m, TIOCGSID, &sid);
    printf("session is the child's: %d\n", sid == pid);
    W(m, "\x03");
    int st;
    waitpid(pid, &st, 0);
    printf("^C: signaled %d by %s\n", WIFSIGNALED(st),
           WIFSIGNALED(st) ? sigabbrev_np(WTERMSIG(st)) : "-");
    show("^C echo", buf, drain(m, buf, sizeof buf));
    close(ready[0]);
    close(m);

    m = open_pair(&r, 1);
    close(r);
    pipe(ready);
    pid = child_on_tty(m, ready, 1);
    close(ready[1]);
    read(ready[0], buf, 1);
    struct winsize ws = {24, 80, 0, 0};
    ioctl(m, TIOCSWINSZ, &ws);
    ssize_t n = read(ready[0], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf("%s", buf);
    waitpid(pid, &st, 0);
    struct winsize got;
    ioctl(m, TIOCGWINSZ, &got);
    printf("master winsize %d %d\n", got.ws_row, got.ws_col);
    close(ready[0]);
    close(m);

    m = open_pair(&r, 1);
    close(r);
    pipe(ready);
    pid = child_on_tty(m, ready, 2);
    close(ready[1]);
    read(ready[0], buf, 1);
    n = 0;
    for (;;) {
        ssize_t k = read(ready[0], buf + n, sizeof buf - 1 - n);
        if (k <= 0) break;
        n += k;
    }
    buf[n] = 0;
    printf("%s", buf);
    waitpid(pid, &st, 0);
    close(ready[0]);
    close(m);
}

static void test_devtty(void) {
    int fd = open("/dev/tty", O_RDWR);
    printf("/dev/tty without a controlling terminal: %s\n",
           fd < 0 ? strerrorname_np(errno) : "opened");
}

int main(void) {
    signal_defaults();  /* ^C, SIGTTIN and the alarm rely on default actions */
    alarm(30);
    setvbuf(stdout, NULL, _IONBF, 0);
    test_openpt();
    test_termios();
    test_canonical();
    test_signals();
    test_devtty();
    return 0;
}
