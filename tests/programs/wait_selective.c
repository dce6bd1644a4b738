/* A wait for one child while other children hold something that wait does not
 * take: a zombie of another pid (kept by WNOWAIT), a stop not asked for (no
 * WUNTRACED), a continue not asked for (no WCONTINUED).  The wait must sleep
 * until its own child exits (Go's os/exec waits for each child this way). */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static int wait_for_new_child(int code) {
  pid_t b = fork();
  if (b == 0) { usleep(50000); _exit(code); }
  int st = -1;
  pid_t got = waitpid(b, &st, 0);
  return got == b && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(void) {
  pid_t a = fork();
  if (a == 0) _exit(3);
  siginfo_t si = {0};
  waitid(P_PID, a, &si, WEXITED | WNOWAIT);
  printf("a is a zombie: status %d\n", si.si_status);
  printf("b exited %d\n", wait_for_new_child(5));

  pid_t c = fork();
  if (c == 0) { for (;;) pause(); }
  int st;
  kill(c, SIGSTOP);
  waitid(P_PID, c, &si, WSTOPPED | WNOWAIT);  /* the stop stays unreported */
  printf("c stopped by %d\n", si.si_status);
  printf("b exited %d\n", wait_for_new_child(6));
  kill(c, SIGCONT);
  waitid(P_PID, c, &si, WCONTINUED | WNOWAIT);  /* the continue stays unreported */
  printf("c continued (code %d)\n", si.si_code);
  printf("b exited %d\n", wait_for_new_child(7));

  kill(c, SIGKILL);
  waitpid(c, &st, 0);
  printf("c killed by %d\n", WTERMSIG(st));
  waitpid(a, &st, 0);
  printf("a reaped: %d\n", WEXITSTATUS(st));
  return 0;
}
