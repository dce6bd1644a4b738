/* POSIX message queues: open/create rules, priorities, limits, timeouts,
 * non-blocking mode, notification by signal, a receiver woken by another
 * process, unlink. Every result with its errno; the same natively and in the
 * sandbox. */
#define _GNU_SOURCE
#include <mqueue.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <time.h>
#include <sys/wait.h>
#include <sched.h>
static void report(const char *what, long ret) { printf("%s: %ld %s\n", what, ret, ret < 0 ? strerrorname_np(errno) : "-"); fflush(stdout); }
static volatile sig_atomic_t got, gotcode, gotval;
static void h(int s, siginfo_t *si, void *u) {
  (void)u;
  got = s;
  gotcode = si->si_code;
  gotval = si->si_value.sival_int;
}
int main(void) {
  char name[64]; snprintf(name, sizeof name, "/pyv-mq-%d", getpid());
  mq_unlink(name);
  struct mq_attr at = {.mq_maxmsg = 3, .mq_msgsize = 64};
  report("open missing", mq_open(name, O_RDWR));
  report("bad name", mq_open("/a/b", O_RDWR | O_CREAT, 0600, &at));
  report("empty name", mq_open("/", O_RDWR | O_CREAT, 0600, &at));
  struct mq_attr bad = {.mq_maxmsg = 11, .mq_msgsize = 64};
  report("maxmsg 11", mq_open(name, O_RDWR | O_CREAT, 0600, &bad));
  mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &at);
  report("create", q >= 0);
  report("cloexec", fcntl(q, F_GETFD));
  report("create excl again", mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &at));
  report("send p1", mq_send(q, "one", 3, 1));
  report("send p5", mq_send(q, "five", 4, 5));
  report("send p1b", mq_send(q, "one-b", 5, 1));
  report("send too big", mq_send(q, (char[65]){0}, 65, 1));
  report("send prio 32768", mq_send(q, "x", 1, 32768));
  struct mq_attr cur; mq_getattr(q, &cur);
  printf("maxmsg %ld msgsize %ld curmsgs %ld flags %ld\n", cur.mq_maxmsg, cur.mq_msgsize, cur.mq_curmsgs, cur.mq_flags);
  char buf[128]; unsigned prio;
  char st[128]; ssize_t n = read(q, st, sizeof st - 1); st[n < 0 ? 0 : n] = 0; printf("status %s", st);
  struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts); ts.tv_nsec += 20000000; if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
  report("full timed send", mq_timedsend(q, "x", 1, 0, &ts));
  report("small buffer", mq_receive(q, buf, 10, &prio));
  for (int i = 0; i < 3; i++) { n = mq_receive(q, buf, sizeof buf, &prio); printf("got %.*s prio %u\n", (int)n, buf, prio); }
  struct mq_attr nb = {.mq_flags = O_NONBLOCK};
  report("setattr nonblock", mq_setattr(q, &nb, NULL));
  report("empty nonblock", mq_receive(q, buf, sizeof buf, &prio));
  nb.mq_flags = 0; mq_setattr(q, &nb, NULL);
  struct sigaction sa = {0}; sa.sa_sigaction = h; sa.sa_flags = SA_SIGINFO; sigaction(SIGUSR1, &sa, NULL);
  struct sigevent sev = {0}; sev.sigev_notify = SIGEV_SIGNAL; sev.sigev_signo = SIGUSR1; sev.sigev_value.sival_int = 77;
  report("notify", mq_notify(q, &sev));
  report("notify again", mq_notify(q, &sev));
  n = read(q, st, sizeof st - 1); st[n < 0 ? 0 : n] = 0; printf("status %s", st);
  pid_t pid = fork();
  if (pid == 0) { mqd_t c = mq_open(name, O_WRONLY); mq_send(c, "hi", 2, 2); _exit(0); }
  int ws; waitpid(pid, &ws, 0);
  for (int i = 0; i < 1000000 && !got; i++) sched_yield();
  printf("signal %d code %d value %d\n", (int)got, (int)gotcode, (int)gotval);
  n = mq_receive(q, buf, sizeof buf, &prio); printf("got %.*s prio %u\n", (int)n, buf, prio);
  /* a blocked receiver is woken by a sender in a child */
  pid = fork();
  if (pid == 0) { mqd_t c = mq_open(name, O_WRONLY); for (int i = 0; i < 1000; i++) sched_yield(); mq_send(c, "late", 4, 0); _exit(0); }
  n = mq_receive(q, buf, sizeof buf, &prio); printf("got %.*s prio %u\n", (int)n, buf, prio);
  waitpid(pid, &ws, 0);
  report("unlink", mq_unlink(name));
  report("unlink again", mq_unlink(name));
  report("still usable", mq_send(q, "z", 1, 0));
  report("not a queue", mq_send(0, "z", 1, 0));
  return 0;
}
