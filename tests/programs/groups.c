/* Supplementary groups and no_new_privs: setgroups/getgroups (as root), and
 * what fork keeps.  Prints only values that are the same on every Linux host. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int minus_one = -1; /* hidden from the compiler's size checks */

static const char *err(int r) { return r < 0 ? strerrorname_np(errno) : "ok"; }

static void show(const char *what) {
    gid_t g[16];
    int n = getgroups(16, g);
    printf("%s: %d:", what, n);
    for (int i = 0; i < n; i++)
        printf(" %d", (int)g[i]);
    printf("\n");
}

int main(void) {
    gid_t set[] = {30, 10, 20};
    gid_t one[1];
    printf("setgroups %s\n", err(setgroups(3, set)));
    show("after set");
    printf("count %d\n", getgroups(0, NULL));
    printf("too small %s\n", err(getgroups(1, one)));
    printf("negative %s\n", err(getgroups(minus_one, one)));
    printf("nnp before %d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    printf("set nnp %s\n", err(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)));
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        show("child");
        printf("child nnp %d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
        return 0;
    }
    int status;
    waitpid(pid, &status, 0);
    printf("clear %s\n", err(setgroups(0, NULL)));
    show("after clear");
    return 0;
}
