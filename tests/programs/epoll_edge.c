/* Edge-triggered epoll (EPOLLET) on pipes and eventfds, as Go's netpoller
 * uses it: a ready file is reported once per change, not on every wait, and
 * a write into a pipe that is already readable is a new edge.  Level-triggered
 * entries and EPOLLONESHOT for comparison. */
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

static int ep;

static void wait_once(const char *what) {
  struct epoll_event evs[4];
  int n = epoll_wait(ep, evs, 4, 0);
  printf("%-28s %d event(s)", what, n);
  for (int i = 0; i < n; i++) printf(" [fd tag %d: %#x]", (int)evs[i].data.u64, evs[i].events);
  printf("\n");
}

static void add(int fd, unsigned events, int tag) {
  struct epoll_event ev = {.events = events, .data.u64 = (unsigned)tag};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) perror("epoll_ctl add");
}

int main(void) {
  int p[2];
  char buf[16];
  ep = epoll_create1(0);
  if (ep < 0 || pipe(p)) return 1;

  add(p[0], EPOLLIN | EPOLLRDHUP | EPOLLET, 1);
  wait_once("ET read end, empty:");
  if (write(p[1], "a", 1) != 1) return 1;
  wait_once("after a write:");
  wait_once("no change since:");
  if (write(p[1], "b", 1) != 1) return 1;
  wait_once("a second write:");
  if (read(p[0], buf, sizeof buf) != 2) return 1;
  wait_once("drained:");

  add(p[1], EPOLLOUT | EPOLLET, 2);
  wait_once("ET write end added:");
  wait_once("no change since:");
  epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL);

  int lt[2];
  if (pipe(lt)) return 1;
  add(lt[1], EPOLLOUT, 3);
  wait_once("LT write end:");
  wait_once("LT write end again:");
  epoll_ctl(ep, EPOLL_CTL_DEL, lt[1], NULL);

  add(lt[0], EPOLLIN | EPOLLONESHOT, 4);
  if (write(lt[1], "c", 1) != 1) return 1;
  wait_once("one-shot, readable:");
  if (write(lt[1], "d", 1) != 1) return 1;
  wait_once("one-shot, disarmed:");
  struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = 5};
  epoll_ctl(ep, EPOLL_CTL_MOD, lt[0], &ev);
  wait_once("one-shot, re-armed:");

  int efd = eventfd(0, EFD_NONBLOCK);
  add(efd, EPOLLIN | EPOLLET, 6);
  wait_once("ET eventfd, zero:");
  eventfd_write(efd, 1);
  wait_once("eventfd written:");
  wait_once("no change since:");
  eventfd_write(efd, 1);
  wait_once("written again:");

  close(p[1]);
  wait_once("ET read end, writer gone:");
  return 0;
}
