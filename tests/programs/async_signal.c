/* Asynchronous delivery: a child spinning without syscalls is killed by SIGTERM,
 * and the parent, spinning, gets SIGALRM sent by another process. */
#include <signal.h>
#include "signal_defaults.h"
#include <stdio.h>
#include <unistd.h>
#include <sys/wait.h>
static volatile int got;
static void h(int s) { got = s; }
int main(void) {
  signal_defaults();  /* SIGTERM's default action is what is tested */
  pid_t p = fork();
  if (p == 0) { for (;;) {} }
  usleep(100000); kill(p, SIGTERM); int st; waitpid(p, &st, 0);
  printf("child sig %d\n", WTERMSIG(st));
  signal(SIGALRM, h);
  pid_t me = getpid();
  p = fork();
  if (p == 0) { usleep(100000); kill(me, SIGALRM); _exit(0); }
  volatile unsigned long n = 0; while (!got) n++;
  printf("parent got %d\n", got);
  waitpid(p, &st, 0);
  return 0;
}
