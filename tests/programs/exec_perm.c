/* execve needs execute permission, not read (Linux's open_exec: MAY_EXEC):
 * a mode 0711 program runs for another user; 0744 and 0700 do not (EACCES).
 * Usage: PROG DIR (run as root; the program copies itself into DIR). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void try_as_nobody(const char *prog, mode_t mode) {
	chmod(prog, mode);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		if (setresuid(65534, 65534, 65534))
			_exit(99);
		execl(prog, prog, "child", (char *)NULL);
		printf("mode %o: exec %s\n", mode, strerrorname_np(errno));
		fflush(stdout);
		_exit(1);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("mode %o: status %d\n", mode, WEXITSTATUS(st));
}

int main(int argc, char **argv) {
	if (argc > 1 && !strcmp(argv[1], "child")) {
		printf("child ran as %d\n", geteuid());
		return 0;
	}
	if (argc < 2)
		return 2;
	char prog[4096], buf[65536];
	snprintf(prog, sizeof prog, "%s/prog", argv[1]);
	chmod(argv[1], 0755);
	int in = open("/proc/self/exe", O_RDONLY), out = open(prog, O_CREAT | O_WRONLY, 0700);
	ssize_t n;
	while ((n = read(in, buf, sizeof buf)) > 0)
		write(out, buf, n);
	close(in);
	close(out);
	try_as_nobody(prog, 0711);
	try_as_nobody(prog, 0744);
	try_as_nobody(prog, 0700);
	try_as_nobody(prog, 0755);
	return 0;
}
