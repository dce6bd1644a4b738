/* Lease breaking (issue 14's fcntl33): a conflicting open signals the lease
 * holder and waits until the lease is downgraded or removed; O_NONBLOCK
 * opens fail with EWOULDBLOCK instead. Argument: a fresh directory. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int got(int sig, int fd) {
	sigset_t set;
	siginfo_t si;
	struct timespec limit = {20, 0}; /* a bound on a lost signal, not a pause */

	sigemptyset(&set);
	sigaddset(&set, sig);
	return sigtimedwait(&set, &si, &limit) == sig && si.si_fd == fd;
}

int main(int argc, char **argv) {
	int sig = SIGRTMIN + 2, fd, st, step[2];
	char file[512], c;
	sigset_t block;
	pid_t child;

	if (argc < 2 || pipe(step))
		return 2;
	setvbuf(stdout, NULL, _IONBF, 0);
	snprintf(file, sizeof file, "%s/leased", argv[1]);
	close(open(file, O_CREAT | O_WRONLY, 0644));
	sigemptyset(&block);
	sigaddset(&block, sig);
	sigprocmask(SIG_BLOCK, &block, NULL);
	fd = open(file, O_RDONLY);
	fcntl(fd, F_SETSIG, sig);
	printf("write lease: %d\n", fcntl(fd, F_SETLEASE, F_WRLCK));
	child = fork();
	if (child == 0) {
		/* The exit status tells what happened (the parent prints it). */
		int bits = 0, r = open(file, O_RDONLY | O_NONBLOCK);
		bits |= r < 0 && errno == EWOULDBLOCK ? 1 : 0;
		write(step[1], "1", 1);
		bits |= open(file, O_RDONLY) >= 0 ? 2 : 0; /* waits for the downgrade */
		write(step[1], "2", 1);
		bits |= open(file, O_WRONLY) >= 0 ? 4 : 0; /* waits for the removal */
		_exit(bits);
	}
	printf("signal for the O_NONBLOCK open: %d\n", got(sig, fd));
	read(step[0], &c, 1);
	printf("F_GETLEASE while breaking for a reader: %d\n", fcntl(fd, F_GETLEASE));
	printf("downgrade to a read lease: %d\n", fcntl(fd, F_SETLEASE, F_RDLCK));
	read(step[0], &c, 1);
	printf("signal for the write open: %d\n", got(sig, fd));
	printf("F_GETLEASE while breaking for a writer: %d\n", fcntl(fd, F_GETLEASE));
	printf("read lease during that break: %s\n",
	       fcntl(fd, F_SETLEASE, F_RDLCK) < 0 ? strerrorname_np(errno) : "ok");
	printf("remove: %d\n", fcntl(fd, F_SETLEASE, F_UNLCK));
	waitpid(child, &st, 0);
	printf("child: O_NONBLOCK open EWOULDBLOCK %d, read open after the downgrade %d, "
	       "write open after the removal %d\n", WEXITSTATUS(st) & 1, !!(WEXITSTATUS(st) & 2),
	       !!(WEXITSTATUS(st) & 4));
	return 0;
}
