/* /proc/sys/kernel/ns_last_pid against Linux, in a pid namespace of the
 * program's own (so natively the host's pid allocation is left alone): read
 * back, the next fork takes the number after it, EINVAL past pid_max.
 * With "reuse" (sandbox only: it writes the caller's own namespace's value,
 * which natively would be the host's), a pid is handed out again and the
 * /proc/<pid> directory opened for the first process is not the second's:
 * pidfd_send_signal through it is ESRCH, and the new directory has another
 * inode number (the LTP's pidfd_send_signal03). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *set_last(long v)
{
	int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
	if (fd < 0)
		return strerror(errno);
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld", v);
	ssize_t r = write(fd, buf, n);
	int e = errno;
	close(fd);
	return r < 0 ? strerror(e) : "ok";
}

static long get_last(void)
{
	long v = -1;
	FILE *f = fopen("/proc/sys/kernel/ns_last_pid", "r");
	if (f) {
		fscanf(f, "%ld", &v);
		fclose(f);
	}
	return v;
}

static pid_t spawn(int pipefd)
{
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		read(pipefd, &c, 1);
		_exit(0);
	}
	return pid;
}

static int reuse(void)
{
	int p[2];
	pipe(p);
	pid_t first = spawn(p[0]);
	char path[32];
	snprintf(path, sizeof(path), "/proc/%d", first);
	int dfd = open(path, O_DIRECTORY | O_CLOEXEC);
	struct stat st1, st2;
	fstat(dfd, &st1);
	write(p[1], "x", 1);
	waitpid(first, NULL, 0);
	printf("set ns_last_pid: %s\n", set_last(first - 1));
	pid_t second = spawn(p[0]);
	printf("pid handed out again: %d\n", second == first);
	int dfd2 = open(path, O_DIRECTORY | O_CLOEXEC);
	fstat(dfd2, &st2);
	printf("new /proc dir has another inode: %d\n", st1.st_ino != st2.st_ino);
	long r = syscall(SYS_pidfd_send_signal, dfd, SIGUSR1, NULL, 0);
	printf("signal through the old directory: %s\n", r ? strerror(errno) : "sent");
	r = syscall(SYS_pidfd_send_signal, dfd2, 0, NULL, 0);
	printf("signal 0 through the new one: %s\n", r ? strerror(errno) : "sent");
	write(p[1], "x", 1);
	waitpid(second, NULL, 0);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc > 1 && !strcmp(argv[1], "reuse"))
		return reuse();
	if (unshare(CLONE_NEWPID)) {
		printf("unshare: %s\n", strerror(errno));
		return 1;
	}
	pid_t init = fork();
	if (init == 0) {
		printf("init: ns_last_pid %ld\n", get_last());
		printf("write 99: %s\n", set_last(99));
		printf("read back: %ld\n", get_last());
		pid_t c = fork();
		if (c == 0)
			_exit(0);
		printf("next fork got 100: %d\n", c == 100);
		waitpid(c, NULL, 0);
		printf("write -1: %s\n", set_last(-1));
		printf("write past pid_max: %s\n", set_last(1L << 40));
		_exit(0);
	}
	int status;
	waitpid(init, &status, 0);
	return WEXITSTATUS(status);
}
