/* An mmap bomb: map and touch 32 MiB anonymous chunks until mmap fails (or
 * the memory limit's OOM killer ends the sandbox), up to 4 GiB.  Prints how
 * far it got in whole chunks only when mmap refused ("refused"). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define CHUNK (32UL << 20)

int main(void)
{
    unsigned long got = 0;
    while (got < (4UL << 30)) {
        char *p = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            printf("refused: %s\n", strerror(errno));
            return 0;
        }
        for (unsigned long i = 0; i < CHUNK; i += 4096)
            p[i] = 1;
        got += CHUNK;
    }
    printf("not bounded: 4 GiB touched\n");
    return 1;
}
