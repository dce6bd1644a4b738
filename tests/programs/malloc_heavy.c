/* malloc_heavy: many malloc/realloc/free sizes (1 B .. 8 MiB), both brk and mmap
 * backed, checking contents survive realloc; prints a checksum. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state = 0x9e3779b97f4a7c15ULL;

static uint64_t next(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static size_t pick_size(void)
{
    switch (next() % 8) {
    case 0: return 1 + next() % 16;
    case 1: return 1 + next() % 512;
    case 2: return 1 + next() % 4096;
    case 3: return 4096 + next() % 65536;
    case 4: return 100000 + next() % 200000; /* around the mmap threshold */
    case 5: return 1 + next() % 1024;
    case 6: return (1 + next() % 8) << 20;   /* 1..8 MiB, mmap-backed */
    default: return 1 + next() % 100;
    }
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i += 1 + (i >> 12))
        p[i] = (unsigned char)(seed + i * 31);
    p[n - 1] = (unsigned char)(seed ^ 0x5a);
}

static int check(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n - 1; i += 1 + (i >> 12))
        if (p[i] != (unsigned char)(seed + i * 31))
            return 0;
    return p[n - 1] == (unsigned char)(seed ^ 0x5a);
}

#define SLOTS 64

int main(void)
{
    unsigned char *ptr[SLOTS] = {0};
    size_t len[SLOTS] = {0};
    unsigned seed[SLOTS] = {0};
    uint64_t sum = 0;
    int bad = 0;
    long ops = 0;

    for (int round = 0; round < 3000; round++) {
        int s = (int)(next() % SLOTS);
        if (ptr[s] == NULL) {
            len[s] = pick_size();
            seed[s] = (unsigned)next();
            ptr[s] = malloc(len[s]);
            if (!ptr[s]) { printf("malloc failed\n"); return 1; }
            fill(ptr[s], len[s], seed[s]);
        } else if (next() % 3 == 0) {
            size_t nl = pick_size();
            size_t keep = nl < len[s] ? nl : len[s];
            unsigned char *np = realloc(ptr[s], nl);
            if (!np) { printf("realloc failed\n"); return 1; }
            /* the common prefix must survive (check the part fill() touched) */
            for (size_t i = 0; i + 1 < keep; i += 1 + (i >> 12))
                if (np[i] != (unsigned char)(seed[s] + i * 31)) { bad++; break; }
            ptr[s] = np;
            len[s] = nl;
            seed[s] = (unsigned)next();
            fill(ptr[s], len[s], seed[s]);
        } else {
            if (!check(ptr[s], len[s], seed[s]))
                bad++;
            sum = sum * 1000003 + len[s] + ptr[s][0] + ptr[s][len[s] - 1]; /* bytes fill() wrote */
            free(ptr[s]);
            ptr[s] = NULL;
        }
        ops++;
    }
    for (int s = 0; s < SLOTS; s++) {
        if (ptr[s]) {
            if (!check(ptr[s], len[s], seed[s]))
                bad++;
            sum = sum * 1000003 + len[s];
            free(ptr[s]);
        }
    }
    /* calloc must return zeroed memory, also when reusing freed chunks */
    for (int i = 0; i < 50; i++) {
        size_t n = pick_size();
        unsigned char *p = calloc(1, n);
        for (size_t j = 0; j < n; j += 97)
            if (p[j]) { bad++; break; }
        memset(p, 0xff, n);
        free(p);
    }
    printf("ops %ld\n", ops);
    printf("corrupt %d\n", bad);
    printf("checksum %016" PRIx64 "\n", sum);
    return bad != 0;
}
