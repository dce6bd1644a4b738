/* The state letter of /proc/PID/stat for a child in a syscall: 'R' while the
 * kernel works on it, 'S' once it blocks.  Prints what a parent polling the
 * way LTP's TST_PROCESS_STATE_WAIT does would see.
 *   busy:  the child makes 16 MiB getrandom calls back to back; the parent
 *          samples 40 times, 5 ms apart, and says whether R was seen often.
 *   block: the child blocks reading an empty pipe; the parent waits (5 s at
 *          most) for 'S', then wakes it. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char state_of(pid_t pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return '?';
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : '?';
}

static void nap_ms(int ms) {
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "busy";
    int fds[2];
    if (pipe(fds)) return 2;
    pid_t pid = fork();
    if (pid == 0) {
        if (strcmp(mode, "block") == 0) {
            char c;
            _exit(read(fds[0], &c, 1) == 1 ? 0 : 3);
        }
        size_t len = 16 << 20;
        char *buf = malloc(len);
        for (;;)
            if (getrandom(buf, len, 0) < 0) _exit(4);
    }
    int running = 0, waited = 0;
    char seen = '?';
    if (strcmp(mode, "block") == 0) {
        for (; waited < 500 && (seen = state_of(pid)) != 'S'; waited++) nap_ms(10);
        printf("blocked child: %c\n", seen);
        if (write(fds[1], "x", 1) != 1) return 2;
    } else {
        nap_ms(50);
        for (int i = 0; i < 40; i++, nap_ms(5))
            running += state_of(pid) == 'R';
        printf("busy child seen running: %s\n", running >= 10 ? "often" : "rarely");
        kill(pid, SIGKILL);
    }
    int status;
    waitpid(pid, &status, 0);
    return 0;
}
