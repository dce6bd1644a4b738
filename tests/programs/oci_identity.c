/* What an OCI process.user / rlimits / noNewPrivileges bundle should give the
 * container's processes: ids, supplementary groups, NOFILE limit, no_new_privs,
 * each read with its own syscall. */
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

int main(void) {
    gid_t groups[64];
    int n = getgroups(64, groups);
    struct rlimit rl;
    printf("uid=%d gid=%d euid=%d egid=%d\n", (int)getuid(), (int)getgid(), (int)geteuid(),
           (int)getegid());
    printf("groups(%d)=", n);
    for (int i = 0; i < n; i++)
        printf("%s%d", i ? "," : "", (int)groups[i]);
    printf("\n");
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        printf("nofile=%llu/%llu\n", (unsigned long long)rl.rlim_cur,
               (unsigned long long)rl.rlim_max);
    printf("no_new_privs=%d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    return 0;
}
