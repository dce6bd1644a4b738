/* A signal whose frame cannot be written (its SA_ONSTACK handler's
 * alternate stack is read-only) is replaced by a forced SIGSEGV, as Linux's
 * force_sigsegv: a SIGSEGV handler on the ordinary stack runs (si_code
 * SI_KERNEL), the first handler never does, and the program goes on with its
 * registers intact (the LTP's signal06). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile int usr1_ran, segv_ran, segv_code = -1;
static char altstack[4096 * 4] __attribute__((aligned(4096)));

static void on_usr1(int s) { (void)s; usr1_ran++; }
static void on_segv(int s, siginfo_t *si, void *u) {
    (void)s; (void)u;
    segv_ran++;
    segv_code = si->si_code;
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    stack_t st = {.ss_sp = altstack, .ss_size = sizeof altstack};
    sigaltstack(&st, NULL);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR1, &sa, NULL);
    mprotect(altstack, sizeof altstack, PROT_READ);
    volatile double d = 123.456;
    raise(SIGUSR1);
    printf("usr1 handler ran: %d, segv handler ran: %d, si_code %#x\n", usr1_ran, segv_ran,
           segv_code);
    mprotect(altstack, sizeof altstack, PROT_READ | PROT_WRITE);
    raise(SIGUSR1);
    printf("writable again: usr1 handler ran: %d, segv: %d, double kept: %d\n", usr1_ran,
           segv_ran, d == 123.456);
    sigset_t m;
    sigprocmask(SIG_SETMASK, NULL, &m);
    printf("usr1 blocked after: %d\n", sigismember(&m, SIGUSR1));
    return 0;
}
