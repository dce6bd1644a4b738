/* getrandom: lengths returned, never the bytes themselves. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

static unsigned char big[65536];

static void show(const char *what, long r)
{
    printf("%s %ld %s\n", what, r, r < 0 ? strerrorname_np(errno) : "ok");
}

int main(void)
{
    unsigned char a[64], b[64];
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    show("getrandom 64", syscall(SYS_getrandom, a, sizeof a, 0));
    show("getrandom 64 again", syscall(SYS_getrandom, b, sizeof b, 0));
    printf("two draws differ %d\n", memcmp(a, b, sizeof a) != 0);
    int zeros = 0;
    for (size_t i = 0; i < sizeof a; i++)
        zeros += a[i] == 0;
    printf("not all zero %d\n", zeros < 32);
    show("getrandom nonblock 16", syscall(SYS_getrandom, a, 16, GRND_NONBLOCK));
    show("getrandom 65536", syscall(SYS_getrandom, big, sizeof big, 0));
    show("getrandom 1", syscall(SYS_getrandom, a, 1, 0));
    show("getrandom 0", syscall(SYS_getrandom, a, 0, 0));
    show("getrandom bad flags", syscall(SYS_getrandom, a, 16, 0x100));
    show("getrandom bad pointer", syscall(SYS_getrandom, (void *)8, 16, 0));
    show("libc getrandom 32", (long)getrandom(a, 32, 0));
    return 0;
}
