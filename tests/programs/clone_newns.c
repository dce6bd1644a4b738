/* clone(2) with CLONE_NEWUTS | CLONE_NEWNS (issue 14): the child's host
   name and mounts are its own; the parent sees neither. argv[1]: an empty
   directory to mount on. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

static char stack[65536];
static const char *dir;

static int mounted(void) {
    FILE *f = fopen("/proc/self/mounts", "r");
    char line[4096], needle[1100];
    int n = 0;
    snprintf(needle, sizeof needle, " %s ", dir);
    while (fgets(line, sizeof line, f)) n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

static int child(void *arg) {
    (void)arg;
    struct utsname u;
    int r1 = sethostname("cloned", 6), r2 = mount("none", dir, "tmpfs", 0, NULL);
    uname(&u);
    printf("child: sethostname %d mount %d host %s mounted %d\n", r1, r2, u.nodename,
           mounted());
    fflush(stdout);
    return 3;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    dir = argv[1];
    struct utsname before, after;
    uname(&before);
    int pid = clone(child, stack + sizeof stack, CLONE_NEWUTS | CLONE_NEWNS | SIGCHLD, NULL);
    int st;
    waitpid(pid, &st, 0);
    uname(&after);
    printf("parent: child exit %d, host unchanged %d, mounted %d\n", WEXITSTATUS(st),
           strcmp(before.nodename, after.nodename) == 0, mounted());
    errno = 0;
    pid = clone(child, stack + sizeof stack, CLONE_NEWNS | CLONE_FS | SIGCHLD, NULL);
    printf("NEWNS|FS: %d %s\n", pid, strerrorname_np(errno));
    return 0;
}
