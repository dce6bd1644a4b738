/* A signal handler that uses the SSE registers must not change them for the
 * code it interrupted: the kernel saves the FPU state in the signal frame and
 * rt_sigreturn restores it.  xmm0/xmm8 hold known values across a raw kill()
 * syscall whose handler clobbers both; MXCSR's rounding mode too. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void clobber(int sig) {
    (void)sig;
    __asm__ volatile("pxor %%xmm0, %%xmm0\n\tpxor %%xmm8, %%xmm8\n\t"
                     "movl $0x7f80, -4(%%rsp)\n\tldmxcsr -4(%%rsp)" ::: "xmm0", "xmm8",
                     "memory");
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = clobber;
    sigaction(SIGUSR1, &sa, NULL);
    unsigned long long in0 = 0x1122334455667788ULL, in8 = 0x99aabbccddeeff00ULL;
    unsigned long long out0 = 0, out8 = 0;
    unsigned int mxcsr_before = 0x3f80 | 0x6000, mxcsr_after = 0; /* round toward zero */
    long pid = getpid();
    __asm__ volatile(
        "ldmxcsr %[mb]\n\t"
        "movq %[i0], %%xmm0\n\t"
        "movq %[i8], %%xmm8\n\t"
        "mov $62, %%eax\n\t" /* kill(pid, SIGUSR1) */
        "mov %[pid], %%rdi\n\t"
        "mov $10, %%esi\n\t"
        "syscall\n\t"
        "movq %%xmm0, %[o0]\n\t"
        "movq %%xmm8, %[o8]\n\t"
        "stmxcsr %[ma]\n\t"
        : [o0] "=m"(out0), [o8] "=m"(out8), [ma] "=m"(mxcsr_after)
        : [i0] "r"(in0), [i8] "r"(in8), [pid] "r"(pid), [mb] "m"(mxcsr_before)
        : "rax", "rdi", "rsi", "rcx", "r11", "xmm0", "xmm8", "memory");
    printf("xmm0 %s\n", out0 == in0 ? "kept" : "clobbered");
    printf("xmm8 %s\n", out8 == in8 ? "kept" : "clobbered");
    printf("mxcsr %s\n", mxcsr_after == mxcsr_before ? "kept" : "clobbered");
    return 0;
}
