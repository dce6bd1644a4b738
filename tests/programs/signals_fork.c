/* Signals and processes: a SIGSEGV handler that siglongjmps out, a handler run
 * by kill(getpid()), fork + exit status, a child killed by SIGTERM while in
 * pause(), and 50 children reaped with their statuses summed. */
#include <setjmp.h>
#include <signal.h>
#include "signal_defaults.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
static sigjmp_buf jb;
static volatile int got;
static void segv(int s, siginfo_t *si, void *uc) { (void)uc; printf("segv %d addr %p code %d\n", s, si->si_addr, si->si_code); siglongjmp(jb, 1); }
static void usr1(int s) { got = s; }
int main(void) {
  signal_defaults();  /* SIGTERM's default action is what is tested */
  struct sigaction sa = {0}; sa.sa_sigaction = segv; sa.sa_flags = SA_SIGINFO; sigaction(SIGSEGV, &sa, 0);
  if (!sigsetjmp(jb, 1)) { *(volatile int *)16 = 1; }
  printf("recovered\n");
  signal(SIGUSR1, usr1); kill(getpid(), SIGUSR1); printf("usr1 got %d\n", got);
  int st; pid_t p = fork();
  if (p == 0) { printf("child\n"); fflush(stdout); _exit(7); }
  waitpid(p, &st, 0); printf("child exited %d\n", WEXITSTATUS(st));
  p = fork(); if (p == 0) { pause(); _exit(0); }
  kill(p, SIGTERM); waitpid(p, &st, 0); printf("signaled %d sig %d\n", WIFSIGNALED(st), WTERMSIG(st));
  for (int i = 0; i < 50; i++) { p = fork(); if (!p) _exit(i); }
  int sum = 0; while ((p = wait(&st)) > 0) sum += WEXITSTATUS(st);
  printf("sum %d\n", sum);
  return 0;
}
