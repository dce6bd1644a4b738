/* kill(2) of a zombie succeeds on Linux (signal 0 and SIGKILL alike) until it is
 * reaped; then ESRCH.  Trinity's watchdog waited forever in the sandbox when its
 * kill(child, SIGKILL) of a zombie child got ESRCH. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void){
  pid_t p = fork();
  if (p == 0) _exit(3);
  siginfo_t si; waitid(P_PID, p, &si, WEXITED|WNOWAIT);  /* a zombie now */
  int r0 = kill(p, 0); int e0 = errno;
  int r9 = kill(p, SIGKILL); int e9 = errno;
  printf("kill(zombie,0)=%d %s; kill(zombie,SIGKILL)=%d %s\n", r0, r0?strerror(e0):"", r9, r9?strerror(e9):"");
  int st; waitpid(p, &st, 0); printf("reaped exit %d\n", WEXITSTATUS(st));
  r0 = kill(p, 0); printf("kill(reaped,0)=%d %s\n", r0, r0?strerror(errno):"");
  return 0;}
