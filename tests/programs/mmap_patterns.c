/* mmap_patterns: anonymous mmap/munmap/mprotect/mremap/madvise semantics.
 * Prints only booleans and errno names, never addresses. Uses raw syscalls so
 * that libc wrappers do not hide the kernel's answers. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define PG 4096UL

static long xmmap(void *addr, size_t len, int prot, int flags)
{
    return syscall(SYS_mmap, addr, len, prot, flags, -1, 0);
}

static const char *res(long r)
{
    return r == -1 ? strerrorname_np(errno) : "ok";
}

static int all(const unsigned char *p, size_t n, unsigned char v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return 0;
    return 1;
}

int main(void)
{
    const int RW = PROT_READ | PROT_WRITE;
    const int PRIV = MAP_PRIVATE | MAP_ANONYMOUS;
    long r;

    /* private anonymous: zero-filled, writable */
    unsigned char *p = (unsigned char *)xmmap(NULL, 4 * PG, RW, PRIV);
    printf("private mmap %s aligned %d zero %d\n", res((long)p),
           ((uintptr_t)p % PG) == 0, all(p, 4 * PG, 0));
    memset(p, 0xab, 4 * PG);
    printf("private rw %d\n", all(p, 4 * PG, 0xab));

    /* shared anonymous */
    unsigned char *s = (unsigned char *)xmmap(NULL, 2 * PG, RW, MAP_SHARED | MAP_ANONYMOUS);
    printf("shared mmap %s zero %d\n", res((long)s), all(s, 2 * PG, 0));
    memset(s, 0x5c, 2 * PG);
    printf("shared rw %d\n", all(s, 2 * PG, 0x5c));

    /* non-page-multiple length rounds up: the whole last page is usable */
    unsigned char *odd = (unsigned char *)xmmap(NULL, PG + 1, RW, PRIV);
    odd[2 * PG - 1] = 7;
    printf("odd length usable %d\n", odd[2 * PG - 1] == 7);

    /* MAP_FIXED over an existing mapping replaces it with zero pages */
    unsigned char *fx = (unsigned char *)xmmap(p + PG, PG, RW, PRIV | MAP_FIXED);
    printf("fixed at %d zero %d neighbours kept %d\n", fx == p + PG, all(fx, PG, 0),
           all(p, PG, 0xab) && all(p + 2 * PG, 2 * PG, 0xab));

    /* MAP_FIXED_NOREPLACE over an existing mapping fails with EEXIST */
    r = xmmap(p + 2 * PG, PG, RW, PRIV | MAP_FIXED_NOREPLACE);
    printf("fixed_noreplace busy %s\n", res(r));

    /* munmap a middle page: neighbours stay, the hole is free again */
    r = syscall(SYS_munmap, p + PG, PG);
    printf("munmap middle %s\n", res(r));
    p[0] ^= 1;
    p[2 * PG] ^= 1;
    printf("neighbours %d %d\n", p[0] == (0xab ^ 1), p[2 * PG] == (0xab ^ 1));
    r = xmmap(p + PG, PG, RW, PRIV | MAP_FIXED_NOREPLACE);
    printf("fixed_noreplace hole %s at %d zero %d\n", res(r), r == (long)(p + PG),
           r != -1 && all(p + PG, PG, 0));
    r = xmmap(p + 3 * PG, PG, RW, PRIV | MAP_FIXED_NOREPLACE);
    printf("fixed_noreplace neighbour %s\n", res(r));

    /* a hint inside a busy range is not honoured but the call succeeds */
    r = xmmap(p, PG, RW, PRIV);
    printf("busy hint %s moved %d\n", res(r), r != (long)p);
    syscall(SYS_munmap, (void *)r, PG);

    /* munmap errors; munmap of an unmapped range is fine */
    printf("munmap unaligned %s\n", res(syscall(SYS_munmap, p + 1, PG)));
    printf("munmap zero length %s\n", res(syscall(SYS_munmap, p, 0)));
    printf("munmap twice %s %s\n", res(syscall(SYS_munmap, odd, 2 * PG)),
           res(syscall(SYS_munmap, odd, 2 * PG)));

    /* mmap errors */
    printf("mmap zero length %s\n", res(xmmap(NULL, 0, RW, PRIV)));
    printf("mmap no share type %s\n", res(xmmap(NULL, PG, RW, MAP_ANONYMOUS)));
    printf("mmap fixed unaligned %s\n", res(xmmap(p + 1, PG, RW, PRIV | MAP_FIXED)));
    printf("mmap bad fd %s\n",
           res(syscall(SYS_mmap, NULL, PG, PROT_READ, MAP_PRIVATE, 99, 0)));
    printf("mmap huge %s\n", res(xmmap(NULL, 1UL << 62, RW, PRIV)));

    /* mprotect: read-only keeps contents, back to rw writes again */
    r = syscall(SYS_mprotect, p, PG, PROT_READ);
    printf("mprotect ro %s keeps %d\n", res(r), p[0] == (0xab ^ 1));
    r = syscall(SYS_mprotect, p, PG, RW);
    p[0] = 0x11;
    printf("mprotect rw %s write %d\n", res(r), p[0] == 0x11);
    printf("mprotect unaligned %s\n", res(syscall(SYS_mprotect, p + 1, PG, RW)));
    printf("mprotect bad prot %s\n", res(syscall(SYS_mprotect, p, PG, 0x100)));
    unsigned char *gap = (unsigned char *)xmmap(NULL, 3 * PG, RW, PRIV);
    syscall(SYS_munmap, gap + PG, PG);
    printf("mprotect over hole %s\n", res(syscall(SYS_mprotect, gap, 3 * PG, PROT_READ)));
    printf("munmap over hole %s\n", res(syscall(SYS_munmap, gap, 3 * PG)));

    /* PROT_NONE reservation made usable */
    unsigned char *none = (unsigned char *)xmmap(NULL, 2 * PG, PROT_NONE, PRIV);
    r = syscall(SYS_mprotect, none + PG, PG, RW);
    none[PG] = 3;
    printf("prot_none then rw %s %d\n", res(r), none[PG] == 3);

    /* mremap: grow (may move), shrink, move to a fixed place */
    /* the third page of a 3-page mapping blocks growing the first two in place */
    unsigned char *m = (unsigned char *)xmmap(NULL, 3 * PG, RW, PRIV);
    for (size_t i = 0; i < 2 * PG; i++)
        m[i] = (unsigned char)(i * 7);
    r = syscall(SYS_mremap, m, 2 * PG, 8 * PG, 0);
    printf("mremap grow in place blocked %s\n", res(r));
    unsigned char *g = (unsigned char *)syscall(SYS_mremap, m, 2 * PG, 8 * PG, MREMAP_MAYMOVE);
    int keep = 1;
    for (size_t i = 0; i < 2 * PG; i++)
        keep &= g[i] == (unsigned char)(i * 7);
    printf("mremap grow %s keeps %d tail zero %d\n", res((long)g), keep,
           all(g + 2 * PG, 6 * PG, 0));
    printf("mremap blocker kept %s\n", res(xmmap(m + 2 * PG, PG, RW, PRIV | MAP_FIXED_NOREPLACE)));
    syscall(SYS_munmap, m + 2 * PG, PG);
    g[8 * PG - 1] = 9;
    unsigned char *sh = (unsigned char *)syscall(SYS_mremap, g, 8 * PG, PG, 0);
    keep = 1;
    for (size_t i = 0; i < PG; i++)
        keep &= sh[i] == (unsigned char)(i * 7);
    printf("mremap shrink %s same %d keeps %d\n", res((long)sh), sh == g, keep);
    unsigned char *dst = (unsigned char *)xmmap(NULL, 4 * PG, RW, PRIV);
    unsigned char *mv = (unsigned char *)syscall(SYS_mremap, sh, PG, 2 * PG,
                                                 MREMAP_MAYMOVE | MREMAP_FIXED, dst + PG);
    keep = 1;
    for (size_t i = 0; i < PG; i++)
        keep &= mv[i] == (unsigned char)(i * 7);
    printf("mremap fixed %s at %d keeps %d\n", res((long)mv), mv == dst + PG, keep);
    r = xmmap(sh, PG, RW, PRIV | MAP_FIXED_NOREPLACE);
    printf("mremap source freed %s\n", res(r));
    printf("mremap fixed without maymove %s\n",
           res(syscall(SYS_mremap, mv, PG, PG, MREMAP_FIXED, dst)));
    printf("mremap unaligned %s\n", res(syscall(SYS_mremap, mv + 1, PG, PG, 0)));
    printf("mremap bad flags %s\n", res(syscall(SYS_mremap, mv, PG, PG, 0x100)));

    /* madvise DONTNEED: private anonymous reads back zero, shared keeps data */
    memset(p + 2 * PG, 0x77, 2 * PG);
    r = syscall(SYS_madvise, p + 2 * PG, 2 * PG, MADV_DONTNEED);
    printf("madvise private %s zero %d\n", res(r), all(p + 2 * PG, 2 * PG, 0));
    r = syscall(SYS_madvise, s, 2 * PG, MADV_DONTNEED);
    printf("madvise shared %s keeps %d\n", res(r), all(s, 2 * PG, 0x5c));
    printf("madvise unaligned %s\n", res(syscall(SYS_madvise, p + 1, PG, MADV_DONTNEED)));
    printf("madvise bad advice %s\n", res(syscall(SYS_madvise, p, PG, 12345)));
    printf("madvise normal %s\n", res(syscall(SYS_madvise, p, PG, MADV_NORMAL)));

    /* many small mappings, then unmap them all */
    void *many[256];
    int ok = 1;
    for (int i = 0; i < 256; i++) {
        many[i] = (void *)xmmap(NULL, PG * (1 + i % 4), RW, PRIV);
        ok &= many[i] != (void *)-1;
        if (ok)
            ((unsigned char *)many[i])[0] = (unsigned char)i;
    }
    for (int i = 0; i < 256 && ok; i++)
        ok &= ((unsigned char *)many[i])[0] == (unsigned char)i;
    for (int i = 0; i < 256; i++)
        ok &= syscall(SYS_munmap, many[i], PG * (1 + i % 4)) == 0;
    printf("many mappings %d\n", ok);
    return 0;
}
