/* The sandbox's cgroup v2 hierarchy (sentry/vfs/cgroupfs.py): mount it,
 * make groups, move a process by writing cgroup.procs, a fork stays in its
 * parent's group, clone3(CLONE_INTO_CGROUP) starts a child in another,
 * rmdir of a busy group is EBUSY, no controller can be enabled.  argv[1]:
 * an empty directory to mount it on. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char root[256];

static const char *put(const char *rel, const char *text)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	int fd = open(p, O_WRONLY);
	if (fd < 0)
		return strerror(errno);
	ssize_t n = write(fd, text, strlen(text));
	int e = errno;
	close(fd);
	return n < 0 ? strerror(e) : "ok";
}

static int count_lines(const char *rel, pid_t want, int *has)
{
	char p[512], buf[4096] = {0};
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	int fd = open(p, O_RDONLY);
	if (fd < 0)
		return -1;
	read(fd, buf, sizeof(buf) - 1);
	close(fd);
	int n = 0;
	*has = 0;
	for (char *s = strtok(buf, "\n"); s; s = strtok(NULL, "\n")) {
		n++;
		if (atoi(s) == want)
			*has = 1;
	}
	return n;
}

static const char *rm(const char *rel)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	return rmdir(p) ? strerror(errno) : "ok";
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	snprintf(root, sizeof(root), "%s", argv[1]);
	printf("mount: %s\n", mount("cgroup2", root, "cgroup2", 0, NULL) ? strerror(errno) : "ok");
	char p[512];
	const char *names[] = {"cgroup.procs", "cgroup.controllers", "cgroup.subtree_control",
			       "cgroup.threads", "cgroup.stat", NULL};
	for (int i = 0; names[i]; i++) {
		snprintf(p, sizeof(p), "%s/%s", root, names[i]);
		printf("root has %s: %d\n", names[i], access(p, F_OK) == 0);
	}
	snprintf(p, sizeof(p), "%s/a", root);
	printf("mkdir a: %s\n", mkdir(p, 0755) ? strerror(errno) : "ok");
	snprintf(p, sizeof(p), "%s/a/b", root);
	printf("mkdir a/b: %s\n", mkdir(p, 0755) ? strerror(errno) : "ok");
	snprintf(p, sizeof(p), "%s/a/cgroup.type", root);
	printf("a has cgroup.type: %d\n", access(p, F_OK) == 0);
	printf("enable memory: %s\n", put("cgroup.subtree_control", "+memory"));
	printf("enable bogus: %s\n", put("cgroup.subtree_control", "+bogus"));
	printf("move to a: %s\n", put("a/cgroup.procs", "0"));
	int has, n = count_lines("a/cgroup.procs", getpid(), &has);
	printf("a holds me alone: %d\n", n == 1 && has);
	int sync[2];
	pipe(sync);
	pid_t child = fork();
	if (child == 0) {
		char c;
		read(sync[0], &c, 1);
		_exit(0);
	}
	n = count_lines("a/cgroup.procs", child, &has);
	printf("fork stays in a: %d (%d procs)\n", has, n);
	snprintf(p, sizeof(p), "%s/a/b", root);
	int dfd = open(p, O_DIRECTORY | O_RDONLY);
	struct clone_args args = {0};
	args.flags = CLONE_INTO_CGROUP;
	args.exit_signal = SIGCHLD;
	args.cgroup = dfd;
	pid_t c2 = syscall(SYS_clone3, &args, sizeof(args));
	if (c2 == 0) {
		char c;
		read(sync[0], &c, 1);
		_exit(0);
	}
	n = count_lines("a/b/cgroup.procs", c2, &has);
	printf("CLONE_INTO_CGROUP child in a/b: %d (%d procs)\n", has, n);
	snprintf(p, sizeof(p), "%s/a/b/cgroup.events", root);
	printf("rmdir busy a: %s\n", rm("a"));
	printf("rmdir busy a/b: %s\n", rm("a/b"));
	printf("kill a/b: %s\n", put("a/b/cgroup.kill", "1"));
	int st;
	waitpid(c2, &st, 0);
	printf("its child killed: %d\n", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	write(sync[1], "xx", 2);
	waitpid(child, NULL, 0);
	printf("rmdir a/b: %s\n", rm("a/b"));
	printf("back to the root: %s\n", put("cgroup.procs", "0"));
	printf("rmdir a: %s\n", rm("a"));
	close(dfd);
	printf("umount: %s\n", umount(root) ? strerror(errno) : "ok");
	return 0;
}
