/* Inode flags on a file of the sandbox's root (the overlay; natively the
 * host's /tmp): FS_IOC_SETFLAGS immutable and append-only, the EPERMs they
 * bring, and clearing them (LTP setxattr03, utimensat01, copy_file_range02
 * use chattr on their temporary directory).  Usage: PROG DIR.  Run as root. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/xattr.h>
#include <unistd.h>

static void show(const char *what, long r) {
	printf("%s: %s\n", what, r < 0 ? strerrorname_np(errno) : "ok");
}

int main(int argc, char **argv) {
	char path[4096], other[4096];
	int flags = 0;
	if (argc < 2)
		return 2;
	snprintf(path, sizeof path, "%s/file", argv[1]);
	snprintf(other, sizeof other, "%s/other", argv[1]);
	int fd = open(path, O_CREAT | O_RDWR, 0644);
	write(fd, "data", 4);
	show("GETFLAGS", ioctl(fd, FS_IOC_GETFLAGS, &flags));
	printf("immutable|append %x\n", flags & (FS_IMMUTABLE_FL | FS_APPEND_FL));
	flags |= FS_IMMUTABLE_FL;
	show("set immutable", ioctl(fd, FS_IOC_SETFLAGS, &flags));
	flags = 0;
	ioctl(fd, FS_IOC_GETFLAGS, &flags);
	printf("immutable|append %x\n", flags & (FS_IMMUTABLE_FL | FS_APPEND_FL));
	show("open O_WRONLY immutable", open(path, O_WRONLY));
	show("unlink immutable", unlink(path));
	show("link immutable", link(path, other));
	show("truncate immutable", truncate(path, 0));
	show("setxattr immutable", setxattr(path, "user.x", "v", 1, 0));
	int src = open(path, O_RDONLY);
	show("copy_file_range into immutable", copy_file_range(src, NULL, fd, &(loff_t){0}, 4, 0));
	close(src);
	flags &= ~FS_IMMUTABLE_FL;
	flags |= FS_APPEND_FL;
	show("set append", ioctl(fd, FS_IOC_SETFLAGS, &flags));
	show("open O_WRONLY append-only", open(path, O_WRONLY));
	show("open O_APPEND append-only", open(path, O_WRONLY | O_APPEND));
	show("setxattr append-only", setxattr(path, "user.x", "v", 1, 0));
	flags &= ~FS_APPEND_FL;
	show("clear", ioctl(fd, FS_IOC_SETFLAGS, &flags));
	show("unlink after clearing", unlink(path));
	return 0;
}
