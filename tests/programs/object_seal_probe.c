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

long jump_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6, void *insn);
__asm__(".globl jump_syscall\n"
        "jump_syscall:\n"
        "  mov %rdi, %rax\n"
        "  mov %rsi, %rdi\n"
        "  mov %rdx, %rsi\n"
        "  mov %rcx, %rdx\n"
        "  mov %r8, %r10\n"
        "  mov %r9, %r8\n"
        "  mov 8(%rsp), %r9\n"
        "  mov 16(%rsp), %r11\n"
        "  call *%r11\n"
        "  ret\n");

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
