/* Inode flags on tmpfs (/dev/shm, natively too: Linux's tmpfs keeps them
 * since 6.0), issue 14's statx04, statx08 and unlink09: FS_IOC_GETFLAGS and
 * SETFLAGS, statx's attributes, and the EPERM of changing an append-only or
 * immutable file. Run as root. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utime.h>

static void show(const char *what, long r) {
	printf("%s: %s\n", what, r < 0 ? strerrorname_np(errno) : "ok");
}

static void attrs(const char *path) {
	struct statx sx;
	if (statx(AT_FDCWD, path, 0, STATX_BASIC_STATS, &sx) == 0)
		printf("statx attributes %llx mask has append/immutable/nodump: %d\n",
		       (unsigned long long)sx.stx_attributes,
		       (sx.stx_attributes_mask & 0x70) == 0x70);
}

int main(void) {
	char path[64], moved[80];
	int fd, flags = -1;

	setvbuf(stdout, NULL, _IONBF, 0);
	snprintf(path, sizeof path, "/dev/shm/pyvisor-iflags-%d", getpid());
	snprintf(moved, sizeof moved, "%s.moved", path);
	fd = open(path, O_CREAT | O_RDWR, 0644);
	show("FS_IOC_GETFLAGS", ioctl(fd, FS_IOC_GETFLAGS, &flags));
	printf("flags %x\n", flags);
	attrs(path);
	flags = FS_APPEND_FL | FS_NODUMP_FL;
	show("set append|nodump", ioctl(fd, FS_IOC_SETFLAGS, &flags));
	flags = 0;
	ioctl(fd, FS_IOC_GETFLAGS, &flags);
	printf("flags %x\n", flags);
	attrs(path);
	show("open O_WRONLY append-only", open(path, O_WRONLY));
	show("open O_WRONLY|O_APPEND append-only", open(path, O_WRONLY | O_APPEND));
	show("open O_APPEND|O_TRUNC append-only", open(path, O_WRONLY | O_APPEND | O_TRUNC));
	show("unlink append-only", unlink(path));
	show("rename append-only", rename(path, moved));
	show("chmod append-only", chmod(path, 0600));
	show("utime(NULL) append-only", utime(path, NULL));
	flags = FS_IMMUTABLE_FL;
	show("set immutable", ioctl(fd, FS_IOC_SETFLAGS, &flags));
	attrs(path);
	show("open O_RDONLY immutable", open(path, O_RDONLY));
	show("open O_RDWR immutable", open(path, O_RDWR));
	show("utime(NULL) immutable", utime(path, NULL));
	show("link immutable", link(path, moved));
	flags = 0x4; /* FS_COMPR_FL: tmpfs keeps no such flag */
	show("set compressed", ioctl(fd, FS_IOC_SETFLAGS, &flags));
	flags = 0;
	show("clear", ioctl(fd, FS_IOC_SETFLAGS, &flags));
	show("unlink after clearing", unlink(path));
	struct statx sx;
	statx(AT_FDCWD, "/dev/shm", 0, 0, &sx);
	printf("/dev/shm mount root %d (known %d)\n", !!(sx.stx_attributes & STATX_ATTR_MOUNT_ROOT),
	       !!(sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT));
	fd = open("/dev/shm", O_RDONLY | O_DIRECTORY);
	statx(fd, "", AT_EMPTY_PATH, 0, &sx);
	printf("by fd: mount root %d\n", !!(sx.stx_attributes & STATX_ATTR_MOUNT_ROOT));
	mkdir(path, 0755);
	statx(AT_FDCWD, path, 0, 0, &sx);
	printf("a directory in it: mount root %d (known %d)\n",
	       !!(sx.stx_attributes & STATX_ATTR_MOUNT_ROOT),
	       !!(sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT));
	rmdir(path);
	return 0;
}
