/* Blocking pipe reads that another process's write, a signal, EOF or a kill
 * ends (the sandbox lets the writer finish a parked read: sentry/kernel/
 * parking.py). Each case prints what the read returned; differential. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_alarm(int sig) { (void)sig; }

static pid_t writer_after(int fd, useconds_t delay, const char *text)
{
    pid_t pid = fork();
    if (pid == 0) {
        usleep(delay);
        if (text)
            write(fd, text, strlen(text));
        _exit(0);
    }
    return pid;
}

static void reap(pid_t pid)
{
    int status;
    waitpid(pid, &status, 0);
}

static void interrupted_read(int restart)
{
    int p[2];
    char buf[16] = {0};
    pipe(p);
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigaction(SIGALRM, &sa, NULL);
    pid_t w = writer_after(p[1], 500000, "late");
    struct itimerval it = {{0, 0}, {0, 200000}}; /* SIGALRM at 0.2 s, data at 0.5 s */
    setitimer(ITIMER_REAL, &it, NULL);
    ssize_t r = read(p[0], buf, sizeof buf - 1);
    int e = errno;
    if (r < 0)
        printf("%s: read -1 %s\n", restart ? "SA_RESTART" : "no restart", strerror(e));
    else
        printf("%s: read %zd \"%s\"\n", restart ? "SA_RESTART" : "no restart", r, buf);
    reap(w);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    int p[2];
    char buf[16];

    /* A writer finishes a blocked read: twice, short and long counts. */
    pipe(p);
    pid_t w = writer_after(p[1], 100000, "hello");
    memset(buf, 0, sizeof buf);
    ssize_t r = read(p[0], buf, 3);
    printf("finished read: %zd \"%.3s\"\n", r, buf);
    r = read(p[0], buf, sizeof buf);
    printf("rest: %zd \"%.*s\"\n", r, (int)r, buf);
    reap(w);

    /* EOF while blocked: the last writer goes away. */
    w = fork();
    if (w == 0) {
        close(p[0]);
        usleep(100000);
        _exit(0); /* its copy of the write end closes */
    }
    close(p[1]);
    r = read(p[0], buf, sizeof buf);
    printf("eof read: %zd\n", r);
    reap(w);
    close(p[0]);

    /* A bad buffer: EFAULT, and the byte stays for the next read. */
    pipe(p);
    w = writer_after(p[1], 100000, "x");
    void *volatile bad = (void *)8; /* unmapped */
    r = read(p[0], bad, 1);
    printf("bad buffer: %zd %s\n", r, r < 0 ? strerror(errno) : "");
    r = read(p[0], buf, 1);
    printf("then: %zd \"%.1s\"\n", r, buf);
    reap(w);
    close(p[0]);
    close(p[1]);

    /* A signal: EINTR without SA_RESTART; with it the read goes on. */
    interrupted_read(0);
    interrupted_read(1);

    /* Killed while blocked in a read. */
    pipe(p);
    pid_t reader = fork();
    if (reader == 0) {
        read(p[0], buf, 1);
        _exit(3);
    }
    usleep(100000);
    kill(reader, SIGKILL);
    int status;
    waitpid(reader, &status, 0);
    printf("killed reader: signaled=%d sig=%d\n", WIFSIGNALED(status), WTERMSIG(status));
    return 0;
}
