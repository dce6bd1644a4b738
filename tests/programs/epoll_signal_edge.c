/* An edge and a signal at once: a child exits, which both closes the write
 * end of a pipe (an EPOLLHUP edge on the read end, registered EPOLLET) and
 * queues SIGCHLD.  epoll_pwait with SIGCHLD unblocked finds both: Linux
 * returns the ready event and runs the handler after, and an edge is never
 * lost to the signal.  (The Sentry once took the edge, then met the signal
 * while polling the next file of the interest list, and returned
 * ERESTARTSYS: the edge was gone and `go build` waited forever on a
 * finished compiler's stderr pipe.)  Both orders of the interest list. */
#include <signal.h>
#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t handled;

static void on_chld(int sig) { (void)sig; handled++; }

static void print_events(const char *what, int n, struct epoll_event *evs) {
  printf("%s: %d event(s)", what, n);
  for (int i = 0; i < n; i++) printf(" [tag %d: %#x]", (int)evs[i].data.u64, evs[i].events);
  printf("\n");
}

static void report(const char *what, int n, struct epoll_event *evs) {
  if (n < 0) printf("%s: %s\n", what, strerror(errno));
  else print_events(what, n, evs);
}

static int one_round(int ready_first) {
  int a[2], b[2];
  if (pipe(a) || pipe(b)) return 1;
  int ep = epoll_create1(0);
  struct epoll_event ea = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.u64 = 1};
  struct epoll_event eb = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.u64 = 2};
  if (ready_first) {
    epoll_ctl(ep, EPOLL_CTL_ADD, a[0], &ea);
    epoll_ctl(ep, EPOLL_CTL_ADD, b[0], &eb);
  } else {
    epoll_ctl(ep, EPOLL_CTL_ADD, b[0], &eb);
    epoll_ctl(ep, EPOLL_CTL_ADD, a[0], &ea);
  }
  sigset_t chld, none;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigemptyset(&none);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  pid_t pid = fork();
  if (pid == 0) _exit(0);  /* closes its copy of a[1] */
  close(a[1]);
  /* The child is gone (its pipe end closed, SIGCHLD pending) before the wait. */
  siginfo_t si;
  waitid(P_PID, pid, &si, WEXITED | WNOWAIT);
  struct epoll_event evs[4];
  handled = 0;
  int n = epoll_pwait(ep, evs, 4, 2000, &none);
  char what[64];
  snprintf(what, sizeof what, "%s first, edge and signal", ready_first ? "ready" : "idle");
  report(what, n, evs);
  printf("  handler ran: %d\n", handled);
  n = epoll_pwait(ep, evs, 4, 100, &none);
  report("  the wait after", n, evs);
  printf("  handler ran: %d\n", handled);
  waitpid(pid, NULL, 0);
  sigprocmask(SIG_UNBLOCK, &chld, NULL);
  close(a[0]); close(b[0]); close(b[1]); close(ep);
  return 0;
}

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_chld;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGCHLD, &sa, NULL);
  setvbuf(stdout, NULL, _IONBF, 0);
  return one_round(1) | one_round(0);
}
