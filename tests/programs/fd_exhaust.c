/* 100,000 open descriptors against RLIMIT_NOFILE: with the soft limit at the
 * hard one (20,000 on this project's machines; raising the hard limit needs
 * CAP_SYS_RESOURCE) dup succeeds up to the limit and then fails with EMFILE;
 * at 1,000 likewise; the process goes on.  Prints whether every descriptor
 * up to the limit was had, and the errno. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static int fill(long limit, long want)
{
    struct rlimit rl = {(rlim_t)limit, (rlim_t)limit};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        printf("setrlimit %ld: %s\n", limit, strerror(errno));
        return -1;
    }
    long n = 0;
    int err = 0, first = -1, last = -1;
    while (n < want) {
        int fd = dup(0);
        if (fd < 0) {
            err = errno;
            break;
        }
        if (first < 0)
            first = fd;
        last = fd;
        n++;
    }
    printf("limit %s: opened %s, then %s\n", limit == 1000 ? "1000" : "hard",
           n == want ? "all" : n == limit - 3 ? "up to the limit" : "fewer",
           err ? strerror(err) : "stopped");
    for (int fd = first; first >= 0 && fd <= last; fd++)
        close(fd);
    return 0;
}

int main(void)
{
    struct rlimit hard;
    getrlimit(RLIMIT_NOFILE, &hard);
    if (fill((long)hard.rlim_max, 100000) != 0 || fill(1000, 100000) != 0)
        return 1;
    printf("still running\n");
    return 0;
}
