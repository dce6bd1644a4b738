/* Can an application change a program's cached text through its stub?
 * The image cache keeps a program's read-only pages as shared objects that
 * every process running it maps (sentry/mm/image_cache.py); the stub of this
 * very process received one of them (its last, at fd 6) when its image was
 * loaded.  From the stub's trusted syscall instruction (argv[1]) this maps
 * that file read/write, then read-only and tries to make it writable, and
 * prints one line each: "refused (ERRNO)" or "allowed".
 * Usage: object_seal_probe STUB_SYSCALL_INSN_HEX */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#define OBJECT_FD 6
#define ADDR 0x200000000000UL

#include "jump_syscall.h"

static void report(const char *what, long r) {
    if (r < 0 && r > -4096)
        printf("%s: refused (%s)\n", what, r == -EPERM ? "EPERM" : r == -EACCES ? "EACCES"
                                                                             : strerror((int)-r));
    else
        printf("%s: allowed\n", what);
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    void *insn = (void *)strtoul(argv[1], NULL, 16);
    setvbuf(stdout, NULL, _IONBF, 0);
    long r = jump_syscall(SYS_mmap, ADDR, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
                          OBJECT_FD, 0, insn);
    report("map read/write", r);
    r = jump_syscall(SYS_mmap, ADDR, 4096, PROT_READ, MAP_SHARED | MAP_FIXED, OBJECT_FD, 0, insn);
    report("map read-only", r);
    if (r == (long)ADDR)
        report("mprotect to write",
               jump_syscall(SYS_mprotect, ADDR, 4096, PROT_READ | PROT_WRITE, 0, 0, 0, insn));
    return 0;
}
