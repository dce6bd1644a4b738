/* KSM as a program sees it through a fresh sysfs: /sys/kernel/mm/ksm exists
 * (as on Debian's kernels) with the merger stopped (run = 0), and
 * MADV_MERGEABLE/UNMERGEABLE succeed.  LTP's madvise02 decides from that
 * directory whether MADV_MERGEABLE must be EINVAL: the Sentry's sysfs lacked
 * it while madvise accepted the advice. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <unistd.h>

int main(void) {
  char dir[] = "/tmp/ksm-sysfs-XXXXXX", path[64];
  if (!mkdtemp(dir) || unshare(CLONE_NEWNS) ||
      mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) || mount("sysfs", dir, "sysfs", 0, NULL)) {
    perror("a fresh sysfs");
    return 1;
  }
  snprintf(path, sizeof path, "%s/kernel/mm/ksm", dir);
  printf("ksm dir: %d\n", access(path, F_OK) == 0);
  char buf[16] = "";
  snprintf(path, sizeof path, "%s/kernel/mm/ksm/run", dir);
  int fd = open(path, O_RDONLY);
  if (fd >= 0) {
    ssize_t n = read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    close(fd);
  }
  printf("run: %s", buf[0] ? buf : "(none)\n");
  char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  printf("mergeable: %d\n", madvise(p, 8192, MADV_MERGEABLE) == 0 ? 0 : errno);
  printf("unmergeable: %d\n", madvise(p, 8192, MADV_UNMERGEABLE) == 0 ? 0 : errno);
  umount(dir);
  rmdir(dir);
  return 0;
}
