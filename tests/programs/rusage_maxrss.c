/* ru_maxrss of reaped children: a child that touched 64 MiB shows about that
 * much in RUSAGE_CHILDREN and in wait4's rusage; one auto-reaped while
 * SIGCHLD is ignored adds nothing (Linux accounts a child only when its
 * parent waits for it). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static void touch_child(int mb) {
    char *p = malloc((size_t)mb << 20);
    memset(p, 1, (size_t)mb << 20);
    _exit(p[12345] == 1 ? 0 : 1);
}

static int about(long kb, int mb) { return kb >= (mb << 10) && kb < ((mb + 32) << 10); }

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    printf("no children yet %d\n", ru.ru_maxrss == 0);
    pid_t kid = fork();
    if (kid == 0)
        touch_child(64);
    int st;
    struct rusage wru;
    wait4(kid, &st, 0, &wru);
    printf("wait4 maxrss ~64MiB %d\n", about(wru.ru_maxrss, 64));
    getrusage(RUSAGE_CHILDREN, &ru);
    printf("children maxrss ~64MiB %d\n", about(ru.ru_maxrss, 64));
    long before = ru.ru_maxrss;
    signal(SIGCHLD, SIG_IGN);
    kid = fork();
    if (kid == 0)
        touch_child(128);
    while (kill(kid, 0) == 0)
        usleep(1000);
    getrusage(RUSAGE_CHILDREN, &ru);
    printf("auto-reaped child not counted %d\n", ru.ru_maxrss == before);
    return 0;
}
