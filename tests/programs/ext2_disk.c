/* ext2 on a block device: mkfs.ext2 (the real e2fsprogs, run as a child),
 * mount, file operations, statfs, read-only remount, ENOSPC, umount EBUSY,
 * and a second mount that sees what the first one wrote.
 * Usage: ext2_disk DEVICE MOUNTPOINT.  Prints one line per step. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

static const char *mnt;
static char paths[2][4096];
static int which;

/* mnt/name, in one of two buffers (so a call can take two paths). */
static const char *P(const char *name) {
	which ^= 1;
	snprintf(paths[which], sizeof paths[which], "%s/%s", mnt, name);
	return paths[which];
}

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
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void listdir(const char *dir) {
	DIR *d = opendir(dir);
	char names[64][64];
	int n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)) && n < 64)
		snprintf(names[n++], 64, "%.55s:%d", e->d_name, e->d_type);
	if (d)
		closedir(d);
	qsort(names, n, 64, (int (*)(const void *, const void *))strcmp);
	printf("ls %s:", dir == mnt ? "/" : dir + strlen(mnt));
	for (int i = 0; i < n; i++)
		printf(" %s", names[i]);
	printf("\n");
}

int main(int argc, char **argv) {
	if (argc < 3)
		return 2;
	const char *dev = argv[1];
	mnt = argv[2];
	struct stat st;
	struct statfs sf;
	char buf[8192];

	SHOW("mount /dev/null ext2", mount("/dev/null", mnt, "ext2", 0, NULL));
	SHOW("mount dev nosuchfs", mount(dev, mnt, "nosuchfs", 0, NULL));
	printf("mkfs %d\n", run_mkfs(dev));
	SHOW("mount ext2", mount(dev, mnt, "ext2", 0, NULL));
	SHOW("statfs", statfs(mnt, &sf));
	printf("f_type %lx bsize %ld namelen %ld files %ld\n", (long)sf.f_type,
	       (long)sf.f_bsize, (long)sf.f_namelen, (long)sf.f_files);
	long free0 = sf.f_bfree, ifree0 = sf.f_ffree;
	listdir(mnt);

	int fd = open(P("file"), O_CREAT | O_RDWR, 0640);
	memset(buf, 'a', sizeof buf);
	for (int i = 0; i < 40; i++)  /* 320 KiB: direct and indirect blocks */
		write(fd, buf, sizeof buf);
	SHOW("pwrite far", pwrite(fd, "end", 3, 300000 + 70000));
	SHOW("fstat", fstat(fd, &st));
	printf("size %ld mode %o nlink %ld blksize %ld\n", (long)st.st_size, st.st_mode,
	       (long)st.st_nlink, (long)st.st_blksize);
	SHOW("pread mid", pread(fd, buf, 4, 100000));
	printf("data %.4s\n", buf);
	SHOW("ftruncate 5000", ftruncate(fd, 5000));
	SHOW("ftruncate 9000", ftruncate(fd, 9000));
	memset(buf, 'x', 16);
	SHOW("pread tail", pread(fd, buf, 16, 4998));
	printf("tail %d %d %d\n", buf[0], buf[1], buf[2]);
	close(fd);

	SHOW("mkdir d", mkdir(P("d"), 0755));
	SHOW("mkdir d/e", mkdir(P("d/e"), 0700));
	SHOW("stat d", stat(P("d"), &st));
	printf("d nlink %ld mode %o\n", (long)st.st_nlink, st.st_mode);
	SHOW("link", link(P("file"), P("d/hard")));
	SHOW("symlink fast", symlink("file", P("fast")));
	memset(buf, 'L', 100);
	buf[100] = 0;
	SHOW("symlink slow", symlink(buf, P("slow")));
	SHOW("readlink fast", readlink(P("fast"), buf, sizeof buf));
	SHOW("readlink slow", readlink(P("slow"), buf, sizeof buf));
	SHOW("mknod chr", mknod(P("chr"), S_IFCHR | 0600, makedev(1, 3)));
	SHOW("mknod fifo", mknod(P("fifo"), S_IFIFO | 0600, 0));
	SHOW("stat chr", stat(P("chr"), &st));
	printf("chr rdev %u:%u\n", major(st.st_rdev), minor(st.st_rdev));
	SHOW("rename", rename(P("d/e"), P("e2")));
	SHOW("rename over", rename(P("fast"), P("d/hard")));
	SHOW("rmdir nonempty", rmdir(P("d")));
	SHOW("chmod", chmod(P("file"), 0604));
	SHOW("chown", chown(P("file"), 1234, 5678));
	SHOW("stat file", stat(P("file"), &st));
	printf("file mode %o uid %d gid %d nlink %ld\n", st.st_mode, st.st_uid, st.st_gid,
	       (long)st.st_nlink);
	for (int i = 0; i < 40; i++) {  /* many names: the directory grows a block */
		char name[64];
		snprintf(name, sizeof name, "d/long-name-number-%02d-padding-padding", i);
		close(open(P(name), O_CREAT | O_WRONLY, 0600));
	}
	for (int i = 0; i < 40; i += 2) {
		char name[64];
		snprintf(name, sizeof name, "d/long-name-number-%02d-padding-padding", i);
		unlink(P(name));
	}
	SHOW("stat d", stat(P("d"), &st));
	printf("d size %ld\n", (long)st.st_size);
	listdir(mnt);

	fd = open(P("big"), O_CREAT | O_WRONLY, 0600);
	long total = 0, n;
	memset(buf, 'b', sizeof buf);
	while ((n = write(fd, buf, sizeof buf)) > 0)
		total += n;
	printf("fill stopped: %s, wrote >1MiB %d\n", strerror(errno), total > (1 << 20));
	SHOW("umount busy", umount(mnt));
	close(fd);
	SHOW("unlink big", unlink(P("big")));
	SHOW("statfs", statfs(mnt, &sf));
	printf("free back %d inodes used %ld\n", sf.f_bfree > free0 - 600, ifree0 - (long)sf.f_ffree);

	SHOW("remount ro", mount(dev, mnt, "ext2", MS_REMOUNT | MS_RDONLY, NULL));
	SHOW("create on ro", open(P("new"), O_CREAT | O_WRONLY, 0600));
	SHOW("umount", umount(mnt));
	SHOW("mount ro again", mount(dev, mnt, "ext2", MS_RDONLY, NULL));
	SHOW("stat file", stat(P("file"), &st));
	printf("file size %ld mode %o nlink %ld\n", (long)st.st_size, st.st_mode,
	       (long)st.st_nlink);
	SHOW("readlink slow", readlink(P("slow"), buf, sizeof buf));
	SHOW("open d/hard", fd = open(P("d/hard"), O_RDONLY));
	SHOW("read link target", read(fd, buf, 4));
	close(fd);
	listdir(mnt);
	snprintf(buf, sizeof buf, "%s/d", mnt);
	listdir(buf);
	SHOW("umount", umount(mnt));
	return 0;
}
