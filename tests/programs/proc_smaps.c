/* /proc/self/smaps, smaps_rollup and pagemap: the Rss and Locked of an
 * mlock'ed range (the LTP's mlock05), the present bit of touched and
 * untouched anonymous pages (mmap12), and pagemap's EINVAL for a read that
 * does not start on an entry. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG 4096

static void smaps_of(unsigned long start) {
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int in = 0;
    if (!f) { printf("smaps: errno %d\n", errno); return; }
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx", &a, &b) == 2) {
            if (in) break;
            in = a == start;
            if (in) printf("vma of %lu pages\n", (b - a) / PG);
            continue;
        }
        if (in && (!strncmp(line, "Size:", 5) || !strncmp(line, "Rss:", 4) ||
                   !strncmp(line, "Locked:", 7) || !strncmp(line, "Swap:", 5) ||
                   !strncmp(line, "Private_Dirty:", 14)))
            fputs(line, stdout);
        if (in && !strncmp(line, "VmFlags:", 8))
            printf("locked flag: %s\n", strstr(line, " lo") ? "yes" : "no");
    }
    fclose(f);
}

int main(void) {
    char *g = mmap(NULL, 18 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *p = g + PG;
    if (g == MAP_FAILED || mprotect(p, 16 * PG, PROT_READ | PROT_WRITE)) return 1;
    p[0] = p[3 * PG] = p[5 * PG + 100] = 1;
    int pm = open("/proc/self/pagemap", O_RDONLY);
    if (pm < 0) { printf("pagemap: errno %d\n", errno); return 0; }
    uint64_t e[16];
    if (pread(pm, e, sizeof e, (uintptr_t)p / PG * 8) != sizeof e) return 2;
    printf("present: ");
    for (int i = 0; i < 16; i++) putchar(e[i] >> 63 ? '1' : '0');
    printf("\n");
    errno = 0;
    ssize_t bad = pread(pm, e, 8, (uintptr_t)p / PG * 8 + 4);
    printf("unaligned read: %zd errno %d\n", bad, errno);
    smaps_of((unsigned long)p);
    if (mlock(p + 8 * PG, 4 * PG)) return 3;
    smaps_of((unsigned long)(p + 8 * PG));
    if (pread(pm, e, sizeof e, (uintptr_t)p / PG * 8) != sizeof e) return 4;
    printf("present after mlock: ");
    for (int i = 0; i < 16; i++) putchar(e[i] >> 63 ? '1' : '0');
    printf("\n");
    FILE *r = fopen("/proc/self/smaps_rollup", "r");
    char line[256] = "";
    if (r) {
        fgets(line, sizeof line, r);
        printf("rollup head has [rollup]: %s\n", strstr(line, "[rollup]") ? "yes" : "no");
        fgets(line, sizeof line, r);
        printf("rollup first: %.4s\n", line);
        fclose(r);
    } else {
        printf("rollup: errno %d\n", errno);
    }
    return 0;
}
