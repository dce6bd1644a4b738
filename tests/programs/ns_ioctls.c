/* ioctl_ns(2) on /proc/PID/ns files (issue 14's ioctl_ns tests): the type,
 * the owning and parent user namespaces (EPERM outside the caller's scope,
 * EINVAL for kinds without a parent) and the owner's uid. Run as root. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NSIO 0xb7
#define NS_GET_USERNS _IO(NSIO, 0x1)
#define NS_GET_PARENT _IO(NSIO, 0x2)
#define NS_GET_NSTYPE _IO(NSIO, 0x3)
#define NS_GET_OWNER_UID _IO(NSIO, 0x4)

static void show(const char *what, long r) {
	if (r < 0)
		printf("%s: %s\n", what, strerrorname_np(errno));
	else
		printf("%s: ok\n", what);
}

static ino_t ino_of_fd(int fd) {
	struct stat st;
	return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

int main(void) {
	int uts = open("/proc/self/ns/uts", O_RDONLY), user = open("/proc/self/ns/user", O_RDONLY);
	int pipefd[2], ready[2], fd;
	uid_t uid = 77;
	char path[64], c;
	pid_t p;

	setvbuf(stdout, NULL, _IONBF, 0);
	printf("uts type is CLONE_NEWUTS: %d\n", ioctl(uts, NS_GET_NSTYPE) == CLONE_NEWUTS);
	printf("user type is CLONE_NEWUSER: %d\n", ioctl(user, NS_GET_NSTYPE) == CLONE_NEWUSER);
	show("uts NS_GET_PARENT", ioctl(uts, NS_GET_PARENT));
	show("uts NS_GET_OWNER_UID", ioctl(uts, NS_GET_OWNER_UID, &uid));
	show("first user NS_GET_USERNS", ioctl(user, NS_GET_USERNS));
	show("first user NS_GET_PARENT", ioctl(user, NS_GET_PARENT));
	show("first user NS_GET_OWNER_UID", ioctl(user, NS_GET_OWNER_UID, &uid));
	printf("owner uid %u\n", uid);
	fd = ioctl(uts, NS_GET_USERNS);
	printf("uts's owner is my user ns: %d, cloexec %d\n", fd >= 0 && ino_of_fd(fd) == ino_of_fd(user),
	       fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC));
	if (pipe(pipefd) || pipe(ready))
		return 1;
	p = fork();
	if (p == 0) {
		if (unshare(CLONE_NEWUSER | CLONE_NEWUTS))
			_exit(1);
		int mine = open("/proc/self/ns/user", O_RDONLY), u = open("/proc/self/ns/uts", O_RDONLY);
		int owner = ioctl(u, NS_GET_USERNS);
		printf("child: new uts's owner is the new user ns: %d\n",
		       owner >= 0 && ino_of_fd(owner) == ino_of_fd(mine));
		show("child: new user NS_GET_PARENT (outside)", ioctl(mine, NS_GET_PARENT));
		write(ready[1], "r", 1);
		close(pipefd[1]);
		if (read(pipefd[0], &c, 1) < 0)
			_exit(2);
		_exit(0);
	}
	close(pipefd[0]);
	if (read(ready[0], &c, 1) != 1) /* the child has its namespaces and has printed */
		return 1;
	snprintf(path, sizeof path, "/proc/%d/ns/user", p);
	int child = open(path, O_RDONLY);
	uid = 77;
	show("child's user ns NS_GET_OWNER_UID", ioctl(child, NS_GET_OWNER_UID, &uid));
	printf("its owner uid %u\n", uid);
	fd = ioctl(child, NS_GET_PARENT);
	printf("child's user ns parent is mine: %d\n", fd >= 0 && ino_of_fd(fd) == ino_of_fd(user));
	printf("child's user ns is not mine: %d\n", ino_of_fd(child) != ino_of_fd(user));
	close(pipefd[1]);
	waitpid(p, NULL, 0);
	return 0;
}
