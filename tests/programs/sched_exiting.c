/* sched_getparam/sched_getscheduler name a process by pid until it is
 * reaped, as Linux finds the task until release_task(): also while its
 * leader thread has exited (pthread_exit) and another thread runs on, and
 * while it is a zombie.  (The Sentry answered ESRCH in the leader-gone
 * window, so LTP's sched_setscheduler04 read a stale priority now and then.) */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int pipefd[2];

static void *lingerer(void *arg) {
  (void)arg;
  usleep(200000); /* the leader is gone by now */
  char c = 'x';
  if (write(pipefd[1], &c, 1) != 1) _exit(2);
  pause();
  return NULL;
}

static void probe(const char *when, pid_t pid) {
  struct sched_param p = {.sched_priority = 77};
  int r = sched_getparam(pid, &p);
  int e = errno;
  int pol = sched_getscheduler(pid);
  printf("%s: getparam %s, priority %d, scheduler %d\n", when, r ? strerror(e) : "ok",
         p.sched_priority, pol);
}

int main(void) {
  if (pipe(pipefd)) return 1;
  pid_t pid = fork();
  if (pid == 0) {
    pthread_t th;
    pthread_create(&th, NULL, lingerer, NULL);
    pthread_exit(NULL); /* the leader leaves; the process lives on */
  }
  char c;
  if (read(pipefd[0], &c, 1) != 1) return 1;
  probe("leader exited, a thread left", pid);
  kill(pid, SIGKILL);
  siginfo_t si;
  waitid(P_PID, pid, &si, WEXITED | WNOWAIT);
  probe("zombie", pid);
  waitpid(pid, NULL, 0);
  probe("reaped", pid);
  return 0;
}
