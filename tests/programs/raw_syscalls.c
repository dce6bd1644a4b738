/* raw_syscalls: identity syscalls through syscall(2) and unknown numbers.
 * Not purely differential: the sandbox must print getpid 1 and getppid 0. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void nosys(const char *what, long nr)
{
    errno = 0;
    long r = syscall(nr, 1, 2, 3, 4, 5, 6);
    printf("%s %ld %s\n", what, r, errno ? strerrorname_np(errno) : "no-errno");
}

int main(void)
{
    long pid = syscall(SYS_getpid);
    printf("getpid %ld\n", pid);
    printf("getppid %ld\n", syscall(SYS_getppid));
    printf("gettid is pid %d\n", syscall(SYS_gettid) == pid);
    printf("libc getpid agrees %d\n", getpid() == pid);
    printf("getuid %ld\n", syscall(SYS_getuid));
    printf("geteuid %ld\n", syscall(SYS_geteuid));
    printf("getgid %ld\n", syscall(SYS_getgid));
    printf("getegid %ld\n", syscall(SYS_getegid));
    nosys("syscall 1000", 1000);
    return 0;
}
