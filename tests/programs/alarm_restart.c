/* SIGALRM interrupts a blocking read: EINTR without SA_RESTART, restarted with
 * it.  The read is on a pipe of the program's own; the second alarm's handler
 * writes the byte the restarted read then gets, so no outside writer has to
 * time its write.  The one timing left is the alarm's second: the first read
 * must be blocked when it fires (a second to get from alarm() into read()). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "signal_defaults.h"

static int n, wfd;
static void h(int s) {
  (void)s;
  if (++n == 2) write(wfd, "x", 1);
}
int main(void) {
  signal_defaults();
  int p[2];
  if (pipe(p) != 0) return 2;
  wfd = p[1];
  struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = h; sigaction(SIGALRM, &sa, 0);
  alarm(1); char c; ssize_t r = read(p[0], &c, 1);
  printf("read %zd errno %s n=%d\n", r, r < 0 ? strerror(errno) : "-", n);
  sa.sa_flags = SA_RESTART; sigaction(SIGALRM, &sa, 0);
  alarm(1); r = read(p[0], &c, 1);
  printf("read %zd %c n=%d\n", r, r == 1 ? c : '-', n);
  return 0;
}
