/* Job control: SIGSTOP seen with WUNTRACED, SIGCONT with WCONTINUED, then SIGTERM. */
#include <signal.h>
#include "signal_defaults.h"
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
  signal_defaults();  /* SIGTERM's default action is what is tested */
  pid_t p = fork();
  if (p == 0) { for (;;) pause(); }
  int st;
  kill(p, SIGSTOP); waitpid(p, &st, WUNTRACED); printf("stopped %d sig %d\n", WIFSTOPPED(st), WSTOPSIG(st));
  kill(p, SIGCONT); waitpid(p, &st, WCONTINUED); printf("continued %d\n", WIFCONTINUED(st));
  kill(p, SIGTERM); waitpid(p, &st, 0); printf("term %d %d\n", WIFSIGNALED(st), WTERMSIG(st));
  return 0;
}
