/* Which files epoll accepts: Linux refuses a file with no poll method (EPERM:
 * regular files, directories, /dev/null, /dev/zero; /dev/urandom too since
 * 5.18, left out so that the output does not depend on the host's kernel) and
 * takes pipes and eventfds.  Go's runtime relies on the EPERM to tell what it
 * can wait on; a regular file accepted stays ready for ever in the interest
 * list. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void try_add(int ep, const char *what, int fd) {
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.fd = fd};
  int rc = epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  printf("%-12s add %d %s", what, rc, rc ? strerror(errno) : "ok");
  rc = epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
  printf(", del %d %s\n", rc, rc ? strerror(errno) : "ok");
}

int main(void) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  int p[2];
  if (ep < 0 || pipe(p)) return 1;
  try_add(ep, "regular", open("/proc/self/exe", O_RDONLY));
  try_add(ep, "directory", open("/", O_RDONLY | O_DIRECTORY));
  try_add(ep, "o_path", open("/", O_PATH));
  try_add(ep, "/dev/null", open("/dev/null", O_RDWR));
  try_add(ep, "/dev/zero", open("/dev/zero", O_RDONLY));
  try_add(ep, "pipe read", p[0]);
  try_add(ep, "pipe write", p[1]);
  try_add(ep, "eventfd", eventfd(0, EFD_NONBLOCK));
  try_add(ep, "itself", ep);
  return 0;
}
