/* Signal-driven I/O (issue 14's fcntl31, fcntl38, fcntl39): O_ASYNC on a pipe
 * signals the owner when data comes (F_SETSIG's signal with si_fd, si_code
 * POLL_IN and si_band; plain SIGIO without), and dnotify's F_NOTIFY signals a
 * directory's owner (one shot unless DN_MULTISHOT; DN_RENAME only within the
 * directory). Every signal is blocked and taken with a zero-timeout
 * sigtimedwait: Linux queues it before the causing call returns.
 * Argument: a fresh directory. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int take(int sig, siginfo_t *si) {
	sigset_t set;
	struct timespec zero = {0, 0};

	sigemptyset(&set);
	sigaddset(&set, sig);
	memset(si, 0, sizeof *si);
	return sigtimedwait(&set, si, &zero);
}

static void report(const char *what, int sig, int fd) {
	siginfo_t si;
	int r = take(sig, &si);

	if (r < 0)
		printf("%s: none (%s)\n", what, strerrorname_np(errno));
	else
		printf("%s: signal ok, si_fd matches %d, si_code %d, si_band %lx\n", what,
		       si.si_fd == fd, si.si_code, (long)si.si_band);
}

int main(int argc, char **argv) {
	int rt = SIGRTMIN + 1, p[2], dfd, ffd;
	char a[512], b[512], c[512];
	sigset_t block;

	if (argc < 2)
		return 2;
	setvbuf(stdout, NULL, _IONBF, 0);
	sigemptyset(&block);
	sigaddset(&block, rt);
	sigaddset(&block, SIGIO);
	sigprocmask(SIG_BLOCK, &block, NULL);

	if (pipe(p))
		return 3;
	fcntl(p[0], F_SETFL, O_ASYNC);
	fcntl(p[0], F_SETOWN, getpid());
	fcntl(p[0], F_SETSIG, rt);
	write(p[1], "x", 1);
	report("O_ASYNC read end, F_SETSIG", rt, p[0]);
	fcntl(p[0], F_SETSIG, 0);
	write(p[1], "x", 1);
	siginfo_t si;
	printf("plain SIGIO: %s, si_code %d\n", take(SIGIO, &si) == SIGIO ? "ok" : "none",
	       si.si_code);
	fcntl(p[0], F_SETFL, 0);
	write(p[1], "x", 1);
	report("O_ASYNC cleared", rt, p[0]);

	dfd = open(argv[1], O_RDONLY | O_DIRECTORY);
	fcntl(dfd, F_SETSIG, rt);
	printf("F_NOTIFY DN_CREATE: %d\n", fcntl(dfd, F_NOTIFY, DN_CREATE));
	snprintf(a, sizeof a, "%s/a", argv[1]);
	snprintf(b, sizeof b, "%s/b", argv[1]);
	snprintf(c, sizeof c, "%s/sub", argv[1]);
	close(open(a, O_CREAT | O_WRONLY, 0644));
	report("create after DN_CREATE", rt, dfd);
	close(open(b, O_CREAT | O_WRONLY, 0644));
	report("second create (one shot)", rt, dfd);
	fcntl(dfd, F_NOTIFY, DN_ATTRIB | DN_RENAME | DN_MULTISHOT);
	chmod(argv[1], 0755);
	report("chmod of the directory itself", rt, dfd);
	chmod(a, 0600);
	report("chmod of an entry", rt, dfd);
	rename(a, c);
	report("rename within the directory", rt, dfd);
	snprintf(c, sizeof c, "%s/d", argv[1]);
	mkdir(c, 0755);
	snprintf(a, sizeof a, "%s/d/b", argv[1]);
	rename(b, a);
	report("rename out of the directory (DN_RENAME only)", rt, dfd);
	fcntl(dfd, F_NOTIFY, 0);
	chmod(argv[1], 0700);
	report("after F_NOTIFY 0", rt, dfd);
	ffd = open(a, O_RDONLY);
	printf("F_NOTIFY on a file: %s\n", fcntl(ffd, F_NOTIFY, DN_ATTRIB) < 0 ? strerrorname_np(errno) : "ok");
	return 0;
}
