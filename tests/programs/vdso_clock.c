/* vdso_clock: the vDSO's clocks against the kernel's (the raw syscall).
 *   vdso_clock check N prints invariants that hold on any Linux with a vDSO,
 *                      and "raw CLOCK NS" lines on stderr for the test to
 *                      compare with the host's clocks
 *   vdso_clock loop N  N calls of each libc time function (for trap counting)
 *   vdso_clock write   writes the page below the vDSO (its time page): must die
 */
#define _GNU_SOURCE
#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int64_t ns(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }

static int64_t raw_ns(int clk)
{
    struct timespec t;
    syscall(SYS_clock_gettime, clk, &t);
    return ns(t);
}

/* Find NAME@LINUX_2.6 in the vDSO's dynamic symbols through DT_HASH, as a
 * loader would: proves the image is an ELF a loader can use. */
static int has_symbol(uintptr_t base, const char *name)
{
    Elf64_Ehdr *eh = (Elf64_Ehdr *)base;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_type != ET_DYN)
        return 0;
    Elf64_Phdr *ph = (Elf64_Phdr *)(base + eh->e_phoff);
    uintptr_t bias = 0;
    Elf64_Dyn *dyn = NULL;
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type == PT_LOAD && ph[i].p_offset == 0)
            bias = base - ph[i].p_vaddr;
        if (ph[i].p_type == PT_DYNAMIC)
            dyn = (Elf64_Dyn *)ph[i].p_vaddr;
    }
    if (!dyn)
        return 0;
    dyn = (Elf64_Dyn *)((uintptr_t)dyn + bias);
    Elf32_Word *hash = NULL;
    Elf64_Sym *sym = NULL;
    const char *str = NULL;
    for (; dyn->d_tag != DT_NULL; dyn++) {
        if (dyn->d_tag == DT_HASH)
            hash = (Elf32_Word *)(dyn->d_un.d_ptr + bias);
        if (dyn->d_tag == DT_SYMTAB)
            sym = (Elf64_Sym *)(dyn->d_un.d_ptr + bias);
        if (dyn->d_tag == DT_STRTAB)
            str = (const char *)(dyn->d_un.d_ptr + bias);
    }
    if (!hash || !sym || !str)
        return 0;
    for (Elf32_Word i = 0; i < hash[1]; i++)
        if (sym[i].st_value && strcmp(str + sym[i].st_name, name) == 0)
            return 1;
    return 0;
}

static const int clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW,
                             CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME};
#define NCLOCKS (int)(sizeof clocks / sizeof clocks[0])

static int check(long n)
{
    uintptr_t base = getauxval(AT_SYSINFO_EHDR);
    printf("vdso mapped: %d\n", base != 0);
    if (!base)
        return 1;
    printf("symbols: %d %d %d %d\n", has_symbol(base, "__vdso_clock_gettime"),
           has_symbol(base, "__vdso_gettimeofday"), has_symbol(base, "__vdso_time"),
           has_symbol(base, "__vdso_getcpu"));
    for (int c = 0; c < NCLOCKS; c++) {
        int clk = clocks[c];
        int coarse = clk == CLOCK_REALTIME_COARSE || clk == CLOCK_MONOTONIC_COARSE;
        int64_t slack = coarse ? 20000000 : 1000000; /* a tick, or 1 ms */
        struct timespec t, prev;
        int64_t before = raw_ns(clk);
        int r = clock_gettime(clk, &t);
        int64_t after = raw_ns(clk);
        printf("clock %d: ok %d, between syscalls %d\n", clk, r == 0,
               ns(t) >= before - slack && ns(t) <= after + slack);
        fprintf(stderr, "raw %d %lld\n", clk, (long long)ns(t));
        long back = 0;
        prev = t;
        for (long i = 0; i < n; i++) {
            clock_gettime(clk, &t);
            back += ns(t) < ns(prev);
            prev = t;
        }
        printf("clock %d: backwards %ld\n", clk, back);
    }
    struct timeval tv;
    int64_t before = raw_ns(CLOCK_REALTIME);
    gettimeofday(&tv, NULL);
    time_t now = time(NULL);
    int64_t after = raw_ns(CLOCK_REALTIME);
    int64_t tod = (int64_t)tv.tv_sec * 1000000000 + tv.tv_usec * 1000;
    printf("gettimeofday between syscalls %d\n", tod >= before - 1000000 && tod <= after + 1000000);
    printf("time between syscalls %d\n",
           now >= before / 1000000000 - 1 && now <= after / 1000000000 + 1);
    struct timespec res;
    printf("getres monotonic %d\n", clock_getres(CLOCK_MONOTONIC, &res) == 0 && ns(res) >= 1);
    printf("cputime ok %d\n", clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &res) == 0);
    printf("bad clock %d\n", clock_gettime(1234, &res) == -1);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "check") == 0)
        return check(atol(argv[2]));
    if (argc >= 3 && strcmp(argv[1], "loop") == 0) {
        long n = atol(argv[2]);
        struct timespec t;
        struct timeval tv;
        volatile long sink = 0;
        for (long i = 0; i < n; i++) {
            clock_gettime(CLOCK_MONOTONIC, &t);
            clock_gettime(CLOCK_REALTIME, &t);
            gettimeofday(&tv, NULL);
            sink += time(NULL) + t.tv_nsec + tv.tv_usec;
        }
        printf("looped %ld\n", n);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "write") == 0) {
        uintptr_t base = getauxval(AT_SYSINFO_EHDR);
        if (!base)
            return 2;
        printf("mprotect writable: %d\n",
               mprotect((void *)(base - 4096), 4096, PROT_READ | PROT_WRITE) == 0);
        fflush(stdout);
        *(volatile int *)(base - 4096) = 1; /* the time page (Linux: a vvar page) */
        printf("wrote the time page\n");
        return 0;
    }
    fprintf(stderr, "usage: vdso_clock check N | loop N | write\n");
    return 2;
}
