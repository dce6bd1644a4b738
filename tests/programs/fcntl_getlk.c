/* fcntl F_GETLK / F_OFD_GETLK answers: with no conflict only l_type changes
 * (F_UNLCK, the rest as given); a conflicting lock comes back whole, with
 * SEEK_SET, its absolute range and its owner's pid. Usage: fcntl_getlk FILE */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>
#include <errno.h>
#include <string.h>
static pid_t child;
static void show(const char *w, int fd, short type, short whence, off_t start, off_t len, pid_t pid, int cmd) {
  struct flock fl = {.l_type = type, .l_whence = whence, .l_start = start, .l_len = len, .l_pid = pid};
  int r = fcntl(fd, cmd, &fl);
  printf("%s: %d %s type %d whence %d start %ld len %ld pid %s\n", w, r, r < 0 ? strerrorname_np(errno) : "-", fl.l_type, fl.l_whence, (long)fl.l_start, (long)fl.l_len, fl.l_pid == pid ? "given" : fl.l_pid == -1 ? "-1" : fl.l_pid == child ? "child" : "other");
}
int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (write(fd, "0123456789", 10) != 10) return 1;
  lseek(fd, 4, SEEK_SET);
  show("free, SEEK_CUR, pid 77", fd, F_WRLCK, SEEK_CUR, 1, 2, 77, F_GETLK);
  int p[2]; if (pipe(p)) return 1;
  child = fork();
  if (child == 0) {
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 2, .l_len = 3};
    fcntl(fd, F_SETLK, &fl);
    if (write(p[1], "x", 1) != 1) _exit(1);
    pause();
    _exit(0);
  }
  char c; if (read(p[0], &c, 1) != 1) return 1;
  show("conflict", fd, F_RDLCK, SEEK_END, -9, 4, 77, F_GETLK);
  show("after it", fd, F_WRLCK, SEEK_SET, 5, 0, 77, F_GETLK);
  show("ofd conflict", fd, F_WRLCK, SEEK_SET, 0, 0, 0, F_OFD_GETLK);
  show("bad whence", fd, F_WRLCK, 7, 0, 0, 0, F_GETLK);
  show("bad type", fd, 9, SEEK_SET, 0, 0, 0, F_GETLK);
  kill(child, SIGKILL); waitpid(child, NULL, 0);
  show("free again", fd, F_WRLCK, SEEK_SET, 0, 0, 5, F_GETLK);
  return 0;
}
