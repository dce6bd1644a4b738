/* execve gives the new image a clean FPU: MXCSR back to its default and no
 * vector register still holding what the old image put there (Linux clears
 * the FPU state at exec; the sandbox reuses the stub process of a single-
 * threaded execve and must not carry the old state over). Also checks the FS
 * base (TLS) works after the exec. Usage: exec_fpu (re-executes itself). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const uint64_t PATTERN = 0x5eedf00dcafe1234ULL;

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "after") == 0) {
        uint32_t mxcsr;
        uint64_t x7[2];
        __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
        __asm__ volatile("movdqu %%xmm7, %0" : "=m"(x7));
        printf("after exec: mxcsr=%#x xmm7 kept=%d\n", mxcsr,
               x7[0] == PATTERN || x7[1] == PATTERN);
        return 0;
    }
    uint32_t mxcsr = 0x7f80 | 0x8000; /* round toward zero, flush to zero */
    uint64_t x7[2] = {PATTERN, PATTERN};
    __asm__ volatile("ldmxcsr %0" ::"m"(mxcsr));
    __asm__ volatile("movdqu %0, %%xmm7" ::"m"(x7) : "xmm7");
    char *args[] = {argv[0], "after", NULL};
    char *envp[] = {NULL};
    execve(argv[0], args, envp);
    perror("execve");
    return 1;
}
