/* PTRACE_ATTACH to a process in a job-control stop, against Linux: the
 * tracee is in a ptrace-stop when attach returns (requests work at once,
 * no ESRCH), the tracer's wait reports the stop, debug registers read back
 * what was written and refuse a kernel address (EINVAL); after detach and
 * SIGCONT the process runs to its exit (the attach's SIGSTOP is flushed). */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define DR(n) ((void *)(offsetof(struct user, u_debugreg) + (n) * sizeof(long)))

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	pid_t pid = fork();
	if (pid == 0) {
		raise(SIGSTOP);
		_exit(5);
	}
	int status;
	waitpid(pid, &status, WUNTRACED);
	printf("stopped by %d\n", WSTOPSIG(status));
	printf("attach: %s\n", ptrace(PTRACE_ATTACH, pid, 0, 0) ? strerror(errno) : "ok");
	printf("poke dr0=1: %s\n", ptrace(PTRACE_POKEUSER, pid, DR(0), (void *)1) ? strerror(errno) : "ok");
	printf("poke dr0=2: %s\n", ptrace(PTRACE_POKEUSER, pid, DR(0), (void *)2) ? strerror(errno) : "ok");
	errno = 0;
	long v = ptrace(PTRACE_PEEKUSER, pid, DR(0), 0);
	printf("peek dr0: %ld (%s)\n", v, strerror(errno));
	printf("poke dr1=kernel: %s\n",
	       ptrace(PTRACE_POKEUSER, pid, DR(1), (void *)0xffff800000000000UL) ?
	       strerror(errno) : "ok");
	pid_t w = waitpid(pid, &status, WNOHANG);
	printf("wait: it %d, stopped %d by %d\n", w == pid, WIFSTOPPED(status), WSTOPSIG(status));
	printf("detach: %s\n", ptrace(PTRACE_DETACH, pid, 0, 0) ? strerror(errno) : "ok");
	kill(pid, SIGCONT);
	waitpid(pid, &status, 0);
	printf("then it exits %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return 0;
}
