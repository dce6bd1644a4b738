/* SIGALRM interrupts a blocking read: EINTR without SA_RESTART, restarted with
 * it (stdin is a pipe that gets a byte after 2.5 s). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static int n;
static void h(int s) { (void)s; n++; }
int main(void) {
  struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = h; sigaction(SIGALRM, &sa, 0);
  alarm(1); char c; ssize_t r = read(0, &c, 1);
  printf("read %zd errno %s n=%d\n", r, r < 0 ? strerror(errno) : "-", n);
  sa.sa_flags = SA_RESTART; sigaction(SIGALRM, &sa, 0);
  alarm(1); r = read(0, &c, 1);
  printf("read %zd n=%d\n", r, n);
  return 0;
}
