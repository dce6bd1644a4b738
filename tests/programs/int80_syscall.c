/* A 64-bit program making 32-bit syscalls through `int $0x80` (i386
 * numbering: 20 is getpid, 4 is write).  Linux runs them when the kernel has
 * IA32 emulation; the sandbox implements the x86-64 ABI only and answers
 * ENOSYS, never running them on the host.  Either way the process must live
 * and go on with its 64-bit syscalls. */
#include <stdio.h>
#include <unistd.h>

static long int80(long nr, long a1, long a2, long a3) {
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a1), "c"(a2), "d"(a3) : "memory");
    return ret;
}

int main(void) {
    static const char msg[] = "int80 write\n";
    long pid = int80(20, 0, 0, 0);
    long wrote = int80(4, 1, (long)(unsigned long)msg, sizeof msg - 1);
    printf("getpid: %s\n", pid == getpid() ? "pid" : pid == -38 ? "ENOSYS" : "other");
    printf("write: %s\n", wrote == (long)sizeof msg - 1 ? "wrote" : wrote == -38 ? "ENOSYS" : "other");
    printf("alive\n");
    return 0;
}
