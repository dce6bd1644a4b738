/* Escape attempts against the systrap stub (not differential: the sandbox only).
 *
 * argv[1]: the address of the stub's one trusted `syscall` instruction (hex);
 * argv[2]: what to try.  Jumping there makes the syscall come from the stub's
 * own instruction pointer, so only the stub's allowlist may pass; anything
 * else must kill the process (SIGSYS), never reach the host. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jump_syscall.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: escape_stub ADDR MODE\n");
        return 2;
    }
    void *insn = (void *)strtoul(argv[1], NULL, 16);
    const char *mode = argv[2];
    long r = -1;
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("trying %s\n", mode);
    if (!strcmp(mode, "getpid")) {
        r = jump_syscall(SYS_getpid, 0, 0, 0, 0, 0, 0, insn);
    } else if (!strcmp(mode, "openat")) {
        r = jump_syscall(SYS_openat, AT_FDCWD, (long)"/etc/shadow", O_RDONLY, 0, 0, 0, insn);
    } else if (!strcmp(mode, "execve")) {
        char *args[] = {"/bin/sh", "-c", "echo ESCAPED", NULL};
        r = jump_syscall(SYS_execve, (long)"/bin/sh", (long)args, 0, 0, 0, 0, insn);
    } else if (!strcmp(mode, "mmap_anon")) {
        r = jump_syscall(SYS_mmap, 0x100000000L, 4096, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0, insn);
    } else if (!strcmp(mode, "mmap_other_fd")) {
        r = jump_syscall(SYS_mmap, 0x100000000L, 4096, PROT_READ, MAP_SHARED | MAP_FIXED, 0, 0,
                         insn);
    } else if (!strcmp(mode, "mprotect_stub")) {
        long code = (long)insn & ~0xfffL;
        r = jump_syscall(SYS_mprotect, code, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, 0, 0, 0,
                         insn);
    } else if (!strcmp(mode, "futex_outside")) {
        static int word;
        r = jump_syscall(SYS_futex, (long)&word, 1 /* FUTEX_WAKE */, 1, 0, 0, 0, insn);
    } else if (!strcmp(mode, "arch_prctl_gs")) {
        r = jump_syscall(SYS_arch_prctl, 0x1001 /* ARCH_SET_GS */, 0, 0, 0, 0, 0, insn);
    } else if (!strcmp(mode, "kill")) {
        r = jump_syscall(SYS_kill, 1, 9, 0, 0, 0, 0, insn);
    } else if (!strcmp(mode, "futex_wake_stub")) {
        /* Allowed by the filter (wake on the stub's own words): harmless. */
        long word = ((long)insn & ~0xffffL) + 0x10000;
        r = jump_syscall(SYS_futex, word, 1 /* FUTEX_WAKE */, 0, 0, 0, 0, insn);
        printf("futex wake returned %ld\n", r);
        return 0;
    } else if (!strcmp(mode, "scribble_slot")) {
        /* The sysmsg slot is application-writable: garbage there must only hurt us. */
        volatile unsigned char *slot = (unsigned char *)(((long)insn & ~0xffffffL) + 0x100000);
        for (int i = 0; i < 4096; i++)
            slot[i] = 0xff;
        r = syscall(SYS_getpid);
        printf("after scribble getpid=%ld\n", r);
        return 0;
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    printf("ESCAPED: %s returned %ld\n", mode, r);
    return 1;
}
