/* Under gdb: a vfork (system()) and a fork that gdb detaches from (it takes
 * its breakpoints out of the children first), then a SIGSEGV two calls deep:
 * the backtrace names crash_here, call_it and main.  On the way ymm3 holds
 * 1.5 four times, for gdb to read through PTRACE_GETREGSET NT_X86_XSTATE. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) static int crash_here(volatile int *p) {
    return *p + 1;
}

__attribute__((noinline)) static int call_it(int n) {
    volatile int *p = (volatile int *)(long)(n - 42); /* NULL for n == 42 */
    return crash_here(p);
}

int main(void) {
    printf("system: %d\n", system("exit 4") >> 8);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(3);
    int st = 0;
    waitpid(pid, &st, 0);
    printf("fork child: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
    printf("about to crash\n");
    fflush(stdout);
    if (__builtin_cpu_supports("avx")) { /* for gdb's p $ymm3 (NT_X86_XSTATE) */
        static const double x = 1.5;
        __asm__ volatile("vbroadcastsd %0, %%ymm3" : : "m"(x) : "xmm3");
    }
    return call_it(42);
}
