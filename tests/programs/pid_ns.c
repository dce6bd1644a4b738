/* PID namespaces against Linux (pid_namespaces(7)): clone(CLONE_NEWPID),
 * unshare(CLONE_NEWPID) + fork, ids seen across levels, /proc/PID/ns/pid
 * and pid_for_children, NS_GET_PARENT, NSpid in /proc/PID/status, the
 * namespace init's death killing the rest, and CAP_SYS_ADMIN checked before
 * a namespace kind (EPERM before EINVAL).  Prints relations, never raw pids. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NS_GET_PARENT 0xb702

static char stack[1 << 16];
static int pipefd[2];

static ino_t ino_of(const char *path)
{
	struct stat st;
	if (stat(path, &st))
		return 0;
	return st.st_ino;
}

static int child_fn(void *arg)
{
	(void)arg;
	printf("clone child: getpid %d getppid %d\n", getpid(), getppid());
	int fd = open("/proc/self/ns/pid", O_RDONLY);
	int p = ioctl(fd, NS_GET_PARENT);
	printf("clone child: NS_GET_PARENT of own ns: %s\n", p < 0 ? strerror(errno) : "ok");
	fflush(stdout);
	return 7;
}

/* The NSpid line's field count and last value. */
static void nspid(pid_t pid, const char *who)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (!f) {
		printf("%s: no status\n", who);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "NSpid:", 6))
			continue;
		int n = 0, last = 0, v;
		char *s = line + 6, *end;
		for (;;) {
			v = strtol(s, &end, 10);
			if (end == s)
				break;
			n++, last = v, s = end;
		}
		printf("%s: NSpid has %d levels, innermost %d\n", who, n, last);
	}
	fclose(f);
}

/* Whether a process has a signal pending for the whole process. */
static void shdpnd(pid_t pid, const char *who)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "ShdPnd:", 7))
			printf("%s: ShdPnd %s", who, line + 8);
	if (f)
		fclose(f);
}

static void test_clone(void)
{
	pid_t pid = clone(child_fn, stack + sizeof(stack), CLONE_NEWPID | SIGCHLD, NULL);
	if (pid < 0) {
		printf("clone(CLONE_NEWPID): %s\n", strerror(errno));
		return;
	}
	int status;
	pid_t w = waitpid(pid, &status, 0);
	printf("parent: waitpid gives the clone's pid: %d, exit %d\n", w == pid,
	       WEXITSTATUS(status));
}

static void test_unshare(void)
{
	pid_t outer = fork();
	if (outer == 0) {
		pid_t me = getpid();
		int sync_fd[2];
		pipe(sync_fd);
		char a[64], b[64];
		if (unshare(CLONE_NEWPID)) {
			printf("unshare: %s\n", strerror(errno));
			exit(1);
		}
		printf("unsharer: getpid unchanged %d\n", getpid() == me);
		printf("unsharer: ns/pid != ns/pid_for_children: %d\n",
		       ino_of("/proc/self/ns/pid") != ino_of("/proc/self/ns/pid_for_children"));
		printf("unshare again: %s\n", unshare(CLONE_NEWPID) ? strerror(errno) : "ok");
		pid_t c = fork();
		if (c == 0) {
			printf("grandchild: getpid %d getppid %d\n", getpid(), getppid());
			fflush(stdout);
			write(sync_fd[1], "x", 1);
			pause();
			_exit(3);
		}
		char sync;
		read(sync_fd[0], &sync, 1);  /* the grandchild has printed */
		snprintf(a, sizeof(a), "/proc/%d/ns/pid", c);
		snprintf(b, sizeof(b), "/proc/self/ns/pid_for_children");
		printf("unsharer: child's ns is my pid_for_children: %d\n", ino_of(a) == ino_of(b));
		int fd = open(a, O_RDONLY);
		int pfd = ioctl(fd, NS_GET_PARENT);
		struct stat st;
		fstat(pfd, &st);
		printf("unsharer: child ns's parent is my ns: %d\n",
		       pfd >= 0 && st.st_ino == ino_of("/proc/self/ns/pid"));
		nspid(c, "unsharer: grandchild");
		siginfo_t si;
		kill(c, SIGTERM);  /* its init has no handler: dropped, from any namespace */
		shdpnd(c, "unsharer: after SIGTERM, grandchild");
		kill(c, SIGKILL);  /* from an ancestor namespace: delivered */
		waitid(P_PID, c, &si, WEXITED | WNOWAIT);
		printf("unsharer: waitid's si_pid is the fork's pid: %d\n", si.si_pid == c);
		int status;
		pid_t w = waitpid(-1, &status, 0);
		printf("unsharer: wait gives the fork's pid: %d, signal %d\n", w == c,
		       WTERMSIG(status));
		printf("unsharer: then %s\n", waitpid(-1, &status, 0) < 0 ? strerror(errno) : "?");
		fflush(stdout);
		exit(0);
	}
	int status;
	waitpid(outer, &status, 0);
}

/* The init of a namespace dies: the process it left behind is killed too
 * (its end of a pipe closes). */
static int init_fn(void *arg)
{
	(void)arg;
	if (fork() == 0) {
		close(pipefd[0]);
		pause();
		_exit(0);
	}
	return 0;
}

static void test_init_death(void)
{
	pipe(pipefd);
	pid_t pid = clone(init_fn, stack + sizeof(stack), CLONE_NEWPID | SIGCHLD, NULL);
	close(pipefd[1]);
	int status;
	waitpid(pid, &status, 0);
	struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
	int r = poll(&p, 1, 10000);
	char c;
	printf("init died: the rest of its namespace is gone: %d\n",
	       r == 1 && read(pipefd[0], &c, 1) == 0);
	close(pipefd[0]);
}

static void test_eperm_first(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
		struct __user_cap_data_struct d[2];
		syscall(SYS_capget, &h, d);
		d[0].effective &= ~(1u << CAP_SYS_ADMIN);
		syscall(SYS_capset, &h, d);
		printf("no CAP_SYS_ADMIN: unshare(CLONE_NEWPID) %s\n",
		       unshare(CLONE_NEWPID) ? strerror(errno) : "ok");
		printf("no CAP_SYS_ADMIN: unshare(CLONE_NEWNET) %s\n",
		       unshare(CLONE_NEWNET) ? strerror(errno) : "ok");
		fflush(stdout);
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	test_clone();
	test_unshare();
	test_init_death();
	test_eperm_first();
	return 0;
}
