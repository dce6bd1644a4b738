/* ioctl(PIDFD_GET_INFO) (issue 14's ioctl_pidfd01): ids and credentials of
 * a live process, its wait status once reaped (PIDFD_INFO_EXIT),
 * ESRCH when that is not asked for, ENOTTY on another kind of file. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct info {
	uint64_t mask, cgroupid;
	uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
	int32_t exit_code;
	uint32_t coredump_mask, spare;
};
#define PIDFD_GET_INFO _IOWR(0xFF, 11, struct info)

int main(void) {
	struct info in;
	int p[2], pidfd;
	char c;
	pid_t child;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (pipe(p))
		return 2;
	child = fork();
	if (child == 0) {
		read(p[0], &c, 1);
		_exit(7);
	}
	pidfd = syscall(SYS_pidfd_open, child, 0);
	memset(&in, 0, sizeof in);
	printf("live: %d\n", ioctl(pidfd, PIDFD_GET_INFO, &in));
	printf("mask pid|creds %d, pid %d, ppid %d, euid %u\n", (int)(in.mask & 3) == 3,
	       in.pid == (uint32_t)child, in.ppid == (uint32_t)getpid(), in.euid);
	write(p[1], "x", 1);
	waitpid(child, NULL, 0);
	memset(&in, 0, sizeof in);
	int r = ioctl(pidfd, PIDFD_GET_INFO, &in);
	printf("reaped, no EXIT asked: %s\n", r < 0 ? strerrorname_np(errno) : "ok");
	memset(&in, 0, sizeof in);
	in.mask = 8; /* PIDFD_INFO_EXIT */
	r = ioctl(pidfd, PIDFD_GET_INFO, &in);
	printf("reaped, EXIT asked: %d, has EXIT %d, exit_code %#x\n", r, !!(in.mask & 8), in.exit_code);
	r = ioctl(p[0], PIDFD_GET_INFO, &in);
	printf("on a pipe: %s\n", r < 0 ? strerrorname_np(errno) : "ok");
	return 0;
}
