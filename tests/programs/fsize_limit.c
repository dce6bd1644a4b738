/* RLIMIT_FSIZE: the default action of SIGXFSZ, short writes up to the limit,
 * EFBIG (and SIGXFSZ) past it for write, pwrite, writev, ftruncate and
 * truncate, no limit on a pipe, and EFBIG alone when SIGXFSZ is ignored.
 * Usage: fsize_limit DIR */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
static volatile sig_atomic_t xfsz;
static void h(int s) { (void)s; xfsz++; }
static void report(const char *w, long r) { printf("%s: %ld %s xfsz %d\n", w, r, r < 0 ? strerrorname_np(errno) : "-", (int)xfsz); }
int main(int argc, char **argv) {
  if (argc < 2)
    return 2;
  setvbuf(stdout, NULL, _IOLBF, 0);
  char path[4096]; snprintf(path, sizeof path, "%s/big", argv[1]);
  struct rlimit rl = {100, 100};
  setrlimit(RLIMIT_FSIZE, &rl);
  pid_t pid = fork();
  if (pid == 0) {
    int cfd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    char b[200] = {0};
    if (write(cfd, b, 100) == 100)
      (void)!write(cfd, b, 1);
    _exit(0);
  }
  int st; waitpid(pid, &st, 0);
  printf("default action: signaled %d sig %d\n", WIFSIGNALED(st), WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  signal(SIGXFSZ, h);
  int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
  char buf[200]; memset(buf, 'x', sizeof buf);
  report("write 150", write(fd, buf, 150));
  report("write 10 more", write(fd, buf, 10));
  report("pwrite at 90", pwrite(fd, buf, 50, 90));
  report("pwrite at 100", pwrite(fd, buf, 1, 100));
  lseek(fd, 95, SEEK_SET);
  struct iovec iov[2] = {{buf, 3}, {buf, 7}};
  report("writev at 95", writev(fd, iov, 2));
  report("ftruncate 100", ftruncate(fd, 100));
  report("ftruncate 101", ftruncate(fd, 101));
  report("truncate 200", truncate(path, 200));
  int p[2];
  if (pipe(p) != 0)
    return 1;
  report("pipe write unlimited", write(p[1], buf, 150));
  signal(SIGXFSZ, SIG_IGN);
  report("ignored", write(fd, buf, 1));
  return 0;
}
