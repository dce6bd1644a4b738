/* MAP_GROWSDOWN: touching below the mapping grows it (one mapping in
 * /proc/self/maps), unless an accessible mapping below would come closer
 * than the stack guard gap (256 pages): then SIGSEGV (the LTP's mmap18). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096L
#define RESERVE 400

static char *reserve(void) {
    char *start = mmap(NULL, RESERVE * PG, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(start, RESERVE * PG);
    if (mmap(start + (RESERVE - 1) * PG, PG, PROT_READ | PROT_WRITE,
             MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0) == MAP_FAILED)
        _exit(9);
    return start;
}

static const char *try(long touch_page, int guard_page) {
    pid_t pid = fork();
    if (pid == 0) {
        char *start = reserve();
        if (guard_page && mmap(start, PG, PROT_READ | PROT_WRITE,
                               MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED)
            _exit(8);
        volatile char *p = start + touch_page * PG + 10;
        *p = 1;
        /* is [p, top) one mapping now? */
        FILE *f = fopen("/proc/self/maps", "r");
        char line[256];
        int one = 0;
        while (fgets(line, sizeof line, f)) {
            unsigned long a, b;
            if (sscanf(line, "%lx-%lx", &a, &b) == 2 && a <= (unsigned long)p &&
                b == (unsigned long)(start + RESERVE * PG))
                one = 1;
        }
        _exit(one ? 0 : 7);
    }
    int st;
    waitpid(pid, &st, 0);
    static char buf[64];
    if (WIFSIGNALED(st))
        snprintf(buf, sizeof buf, "killed by signal %d", WTERMSIG(st));
    else
        snprintf(buf, sizeof buf, "exit %d", WEXITSTATUS(st));
    return buf;
}

int main(void) {
    printf("touch 1 page below: %s\n", try(RESERVE - 2, 0));
    printf("touch 300 pages below: %s\n", try(RESERVE - 301, 0));
    printf("with a page at the bottom, touch 290 pages above it: %s\n", try(290, 1));
    printf("with a page at the bottom, touch 100 pages above it: %s\n", try(100, 1));
    return 0;
}
