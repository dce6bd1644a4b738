/* uname: every utsname field, plus shape checks that hold on any Linux.
 * Differential tests compare only sysname, machine and the shape lines. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

int main(void)
{
    struct utsname u;
    memset(&u, 0x7f, sizeof u);
    long r = syscall(SYS_uname, &u);
    printf("uname %ld\n", r);
    printf("sysname %s\n", u.sysname);
    printf("nodename %s\n", u.nodename);
    printf("release %s\n", u.release);
    printf("version %s\n", u.version);
    printf("machine %s\n", u.machine);
    printf("domainname %s\n", u.domainname);
    printf("shape release %d\n", isdigit((unsigned char)u.release[0]) &&
                                     strchr(u.release, '.') != NULL);
    printf("shape terminated %d\n",
           memchr(u.sysname, 0, sizeof u.sysname) && memchr(u.nodename, 0, sizeof u.nodename) &&
           memchr(u.release, 0, sizeof u.release) && memchr(u.version, 0, sizeof u.version) &&
           memchr(u.machine, 0, sizeof u.machine) &&
           memchr(u.domainname, 0, sizeof u.domainname));
    printf("shape nodename nonempty %d\n", u.nodename[0] != 0);
    errno = 0;
    r = syscall(SYS_uname, (void *)8);
    printf("shape bad pointer %ld %s\n", r, errno ? strerrorname_np(errno) : "no-errno");
    return 0;
}
