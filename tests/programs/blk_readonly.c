/* A block device's read-only flag and read-ahead window (block/ioctl.c):
 * BLKROGET/BLKROSET, BLKRAGET/BLKRASET and the BLKFRA* aliases, set on one
 * descriptor and seen on another; a write through the node on a read-only
 * device (EPERM), a read-write mount of it (EACCES) and a read-only one (0);
 * the setters refused without CAP_SYS_ADMIN (EACCES), bad pointers (EFAULT)
 * and BLKRAGET's NULL (EINVAL).  What LTP's ioctl04 and ioctl06 check.
 * Usage: blk_readonly DEVICE MOUNTPOINT.  Prints one line per step. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#define SHOW(what, expr) do { errno = 0; long r_ = (long)(expr); \
	printf("%-28s %ld %s\n", what, r_, r_ < 0 ? strerror(errno) : ""); } while (0)

static int run_mkfs(const char *dev) {
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		dup2(fd, 2);
		execlp("mkfs.ext2", "mkfs.ext2", "-q", "-F", "-b", "1024", "-N", "64",
		       "-O", "^dir_index", "-E", "nodiscard", dev, "2048", (char *)NULL);
		_exit(127);
	}
	int st;
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The setters as an unprivileged user, in a child: the capability check
 * comes before the argument is read. */
static void unprivileged(int fd) {
	pid_t pid = fork();
	if (pid == 0) {
		int one = 1;
		unsigned long ra = 0;
		if (setuid(65534) != 0)
			_exit(1);
		SHOW("nobody BLKROSET", ioctl(fd, BLKROSET, &one));
		SHOW("nobody BLKROSET bad ptr", ioctl(fd, BLKROSET, (void *)8));
		SHOW("nobody BLKRASET", ioctl(fd, BLKRASET, 1024UL));
		SHOW("nobody BLKRAGET", ioctl(fd, BLKRAGET, &ra));
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("nobody child %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: %s DEVICE MOUNTPOINT\n", argv[0]);
		return 2;
	}
	const char *dev = argv[1], *mnt = argv[2];
	setvbuf(stdout, NULL, _IONBF, 0);
	printf("mkfs %d\n", run_mkfs(dev));
	int fd = open(dev, O_RDONLY);
	int other = open(dev, O_RDONLY);
	if (fd < 0 || other < 0) {
		perror("open");
		return 1;
	}
	int ro = -1;
	SHOW("BLKROGET", ioctl(fd, BLKROGET, &ro));
	printf("ro %d\n", ro);

	unsigned long orig = 0, ra = 0;
	SHOW("BLKRAGET", ioctl(fd, BLKRAGET, &orig));
	SHOW("BLKRAGET NULL", ioctl(fd, BLKRAGET, NULL));
	SHOW("BLKRAGET bad ptr", ioctl(fd, BLKRAGET, (void *)8));
	static const unsigned long values[] = {0, 512, 1024, 4096, 100, 7, 65536};
	for (unsigned i = 0; i < sizeof values / sizeof values[0]; i++) {
		ra = 12345;
		SHOW("BLKRASET", ioctl(fd, BLKRASET, values[i]));
		SHOW("BLKRAGET other fd", ioctl(other, BLKRAGET, &ra));
		printf("ra %lu -> %lu\n", values[i], ra);
	}
	SHOW("BLKFRASET", ioctl(fd, BLKFRASET, 2048UL));
	SHOW("BLKFRAGET", ioctl(fd, BLKFRAGET, &ra));
	printf("fra %lu\n", ra);
	SHOW("BLKRASET restore", ioctl(fd, BLKRASET, orig));

	unprivileged(fd);

	SHOW("BLKROSET bad ptr", ioctl(fd, BLKROSET, (void *)8));
	int one = 1, zero = 0;
	SHOW("BLKROSET 1", ioctl(fd, BLKROSET, &one));
	ro = -1;
	SHOW("BLKROGET other fd", ioctl(other, BLKROGET, &ro));
	printf("ro %d\n", ro);
	/* Closed before each mount: a kernel without BLK_DEV_WRITE_MOUNTED
	 * refuses to mount a device open for writing. */
	int wfd = open(dev, O_WRONLY);
	SHOW("open for write", wfd < 0 ? -1 : 0);
	char block[512] = {0};
	SHOW("write on ro", write(wfd, block, sizeof block));
	SHOW("pwrite on ro", pwrite(wfd, block, sizeof block, 0));
	close(wfd);
	SHOW("mount rw on ro", mount(dev, mnt, "ext2", 0, NULL));
	SHOW("mount ro on ro", mount(dev, mnt, "ext2", MS_RDONLY, NULL));
	SHOW("umount", umount(mnt));

	SHOW("BLKROSET 0", ioctl(fd, BLKROSET, &zero));
	ro = -1;
	SHOW("BLKROGET", ioctl(fd, BLKROGET, &ro));
	printf("ro %d\n", ro);
	wfd = open(dev, O_WRONLY);
	SHOW("pwrite on rw", pwrite(wfd, block, sizeof block, 0));
	close(wfd);
	SHOW("mount rw", mount(dev, mnt, "ext2", 0, NULL));
	SHOW("umount", umount(mnt));
	close(other);
	close(fd);
	return 0;
}
