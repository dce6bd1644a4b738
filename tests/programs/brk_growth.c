/* brk_growth: the program break through the raw syscall (brk(0) returns the
 * current break; a failed brk returns the old break unchanged) and through
 * glibc's sbrk/brk. Prints deltas and booleans only, never addresses. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PG 4096UL

static uintptr_t raw_brk(uintptr_t addr)
{
    return (uintptr_t)syscall(SYS_brk, addr);
}

static char out[4096];
static size_t outlen;

/* Buffer output until the break is back where glibc left it. */
static void say(const char *s)
{
    size_t n = strlen(s);
    memcpy(out + outlen, s, n);
    outlen += n;
}

static void sayb(const char *what, int v)
{
    char line[128];
    snprintf(line, sizeof line, "%s %d\n", what, v);
    say(line);
}

int main(void)
{
    /* part 1: raw syscalls, leaving the break exactly as found */
    uintptr_t start = raw_brk(0);
    sayb("brk0 nonzero", start != 0);
    sayb("brk0 stable", raw_brk(0) == start);

    uintptr_t cur = start;
    int ok = 1;
    for (int i = 0; i < 256; i++) {
        uintptr_t want = cur + PG + 123;
        uintptr_t got = raw_brk(want);
        ok &= got == want;
        memset((void *)cur, (i + 1) & 0xff, want - cur);
        cur = want;
    }
    sayb("grow 256 steps", ok);
    sayb("brk0 after growth", raw_brk(0) == cur);
    uintptr_t c = start;
    ok = 1;
    for (int i = 0; i < 256; i++) {
        uintptr_t end = c + PG + 123;
        for (uintptr_t a = c; a < end; a += 61)
            ok &= *(unsigned char *)a == (unsigned char)((i + 1) & 0xff);
        c = end;
    }
    sayb("readback", ok);

    uintptr_t big = raw_brk(cur + (16UL << 20));
    sayb("grow 16 MiB", big == cur + (16UL << 20));
    ((volatile char *)cur)[(16UL << 20) - 1] = 1;
    sayb("fresh memory zero", ((volatile char *)cur)[8UL << 20] == 0);

    sayb("shrink returns new break", raw_brk(start + 2 * PG) == start + 2 * PG);
    sayb("brk0 after shrink", raw_brk(0) == start + 2 * PG);
    /* pages above the shrunk break are discarded: growing again gives zeros */
    uintptr_t again = raw_brk(start + 64 * PG);
    uintptr_t probe = (start + 4 * PG) & ~(PG - 1);
    sayb("regrow", again == start + 64 * PG);
    sayb("regrown page zero", *(volatile unsigned char *)(probe + 17) == 0);
    sayb("kept below break", *(volatile unsigned char *)start == 1);

    sayb("too low unchanged", raw_brk(1) == start + 64 * PG);
    sayb("huge unchanged", raw_brk(start + (1UL << 46)) == start + 64 * PG);
    sayb("kernel address unchanged", raw_brk((uintptr_t)-4096) == start + 64 * PG);
    sayb("restore", raw_brk(start) == start);

    /* part 2: glibc's sbrk/brk (they track the break themselves) */
    void *b0 = sbrk(0);
    sayb("sbrk0 is brk0", (uintptr_t)b0 == raw_brk(0));
    char *p = sbrk(1 << 20);
    sayb("sbrk grow returns old break", p == b0);
    memset(p, 0x42, 1 << 20);
    sayb("sbrk grow usable", p[(1 << 20) - 1] == 0x42);
    sayb("sbrk0 moved", (char *)sbrk(0) == p + (1 << 20));
    sayb("sbrk shrink", sbrk(-(1 << 20)) == p + (1 << 20));
    sayb("sbrk0 back", sbrk(0) == b0);
    errno = 0;
    int r = brk((char *)b0 + (1UL << 46));
    char line[128];
    snprintf(line, sizeof line, "libc brk huge %d %s\n", r,
             errno ? strerrorname_np(errno) : "no-errno");
    say(line);
    sayb("libc brk back", brk(b0) == 0 && sbrk(0) == b0);

    fwrite(out, 1, outlen, stdout);
    return 0;
}
