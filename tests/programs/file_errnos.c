/* Errors of file calls that LTP checks (issue 14), printed for a differential
 * run: empty paths, NULL paths, the utime permission rules, O_NOATIME, O_PATH
 * descriptors, a removed directory, TCGETA, RNDGETENTCNT, FICLONE and
 * close_range with a shared table. Argument: a fresh directory. Run as root;
 * the permission cases drop to uid 65534 in a child. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <pty.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <termio.h>
#include <unistd.h>
#include <utime.h>

#ifndef FICLONE
#define FICLONE _IOW(0x94, 9, int)
#endif

static void show(const char *what, long r) {
	if (r < 0)
		printf("%s: %s\n", what, strerrorname_np(errno));
	else
		printf("%s: ok\n", what);
}

static void as_nobody(const char *dir) {
	char open_file[512], own_file[512];
	struct utimbuf ub = {1000, 2000};
	pid_t p;

	snprintf(open_file, sizeof open_file, "%s/world_writable", dir);
	snprintf(own_file, sizeof own_file, "%s/roots_only", dir);
	close(open(open_file, O_CREAT | O_WRONLY, 0666));
	chmod(open_file, 0666);
	close(open(own_file, O_CREAT | O_WRONLY, 0644));
	chmod(dir, 0777);
	p = fork();
	if (p == 0) {
		if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
			_exit(9);
		show("utime(writable, NULL) not owner", utime(open_file, NULL));
		show("utime(writable, times) not owner", utime(open_file, &ub));
		show("utime(read-only, NULL) not owner", utime(own_file, NULL));
		show("utimensat(read-only, NULL) not owner",
		     utimensat(AT_FDCWD, own_file, NULL, 0));
		show("open O_NOATIME not owner", open(open_file, O_RDONLY | O_NOATIME));
		snprintf(open_file, sizeof open_file, "%s/node", dir);
		show("mknod char device without CAP_MKNOD",
		     mknod(open_file, S_IFCHR | 0600, makedev(1, 3)));
		show("mknod fifo without CAP_MKNOD", mknod(open_file, S_IFIFO | 0600, 0));
		fflush(stdout);
		_exit(0);
	}
	waitpid(p, NULL, 0);
}

static void opath(const char *dir) {
	char file[512], buf[8];
	int fd;

	snprintf(file, sizeof file, "%s/opath", dir);
	close(open(file, O_CREAT | O_WRONLY, 0644));
	fd = open(file, O_PATH);
	show("fchmod O_PATH", fchmod(fd, 0600));
	show("fchown O_PATH", fchown(fd, 0, 0));
	show("mmap O_PATH", mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED ? -1 : 0);
	show("fgetxattr O_PATH", fgetxattr(fd, "user.x", buf, sizeof buf));
	close(fd);
}

static void removed_dir(const char *dir) {
	char sub[512], buf[1024];
	int fd;

	snprintf(sub, sizeof sub, "%s/gone", dir);
	mkdir(sub, 0755);
	fd = open(sub, O_RDONLY | O_DIRECTORY);
	rmdir(sub);
	show("getdents64 removed dir", syscall(SYS_getdents64, fd, buf, sizeof buf));
	close(fd);
}

static void devices(const char *dir) {
	struct termio tio;
	int master, slave, cnt = -1, fd, dfd;
	char file[512];

	if (openpty(&master, &slave, NULL, NULL, NULL) == 0) {
		show("TCGETA", ioctl(slave, TCGETA, &tio));
		printf("TCGETA VINTR %d\n", tio.c_cc[VINTR]);
		show("TCGETA bad address", ioctl(slave, TCGETA, (void *)-1));
		close(master);
		close(slave);
	}
	fd = open("/dev/urandom", O_RDONLY);
	show("RNDGETENTCNT", ioctl(fd, RNDGETENTCNT, &cnt));
	printf("entropy count %d\n", cnt);
	close(fd);
	snprintf(file, sizeof file, "%s/clone_dst", dir);
	fd = open(file, O_CREAT | O_RDWR, 0644);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	show("FICLONE from a directory", ioctl(fd, FICLONE, dfd));
	show("FICLONE from a bad fd", ioctl(fd, FICLONE, 1234));
	close(dfd);
	close(fd);
}

static void shared_table(void) {
	int fd = open("/", O_PATH);
	pid_t p = syscall(SYS_clone, CLONE_FILES | SIGCHLD, 0, 0, 0, 0);

	if (p == 0) {
		long r = syscall(SYS_close_range, fd, fd, 2 /* CLOSE_RANGE_UNSHARE */);
		_exit(r == 0 && fcntl(fd, F_GETFD) < 0 ? 0 : 1);
	}
	int st = 0;
	waitpid(p, &st, 0);
	printf("child closed its own copy: %d\n", WEXITSTATUS(st) == 0);
	show("fd open in the parent after CLOSE_RANGE_UNSHARE", fcntl(fd, F_GETFD));
	show("stdout open after a CLONE_FILES child exited", fcntl(1, F_GETFD));
}

int main(int argc, char **argv) {
	struct timeval tv[2] = {{1, 0}, {2, 0}};

	if (argc < 2)
		return 2;
	setvbuf(stdout, NULL, _IONBF, 0);
	show("chown empty path", chown("", 0, 0));
	show("lchown empty path", lchown("", 0, 0));
	show("utimes NULL path", syscall(SYS_utimes, NULL, tv));
	show("utimensat AT_FDCWD NULL path", syscall(SYS_utimensat, AT_FDCWD, NULL, NULL, 0));
	show("open the running program for writing", open(argv[0], O_WRONLY));
	show("truncate the running program", truncate(argv[0], 0));
	show("open it read-only", open(argv[0], O_RDONLY));
	as_nobody(argv[1]);
	opath(argv[1]);
	removed_dir(argv[1]);
	devices(argv[1]);
	shared_table();
	return 0;
}
