/* pipe-user-pages-soft (issue 14's pipe15): an unprivileged user's pipes past
 * the soft limit (16384 pages: 1024 default pipes) get two pages, and
 * F_SETPIPE_SZ cannot grow them back; root's are never limited. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
	struct rlimit r = {4096, 4096};
	int p[2], i, size = 0, soft = 0;
	FILE *f = fopen("/proc/sys/fs/pipe-user-pages-soft", "r");

	setvbuf(stdout, NULL, _IONBF, 0);
	if (!f || fscanf(f, "%d", &soft) != 1)
		return 2;
	fclose(f);
	printf("soft limit %d\n", soft);
	if (setrlimit(RLIMIT_NOFILE, &r))
		return 3;
	if (fork() == 0) {
		if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
			_exit(9);
		for (i = 0; i < 1500; i++) {
			if (pipe(p))
				break;
			size = fcntl(p[0], F_GETPIPE_SZ);
			if (size < 65536)
				break;
		}
		printf("unprivileged: a pipe past the limit has %d bytes (after at least 1000: %d)\n",
		       size, i >= 1000);
		printf("growing it: %s\n", fcntl(p[0], F_SETPIPE_SZ, 65536) < 0 ? strerrorname_np(errno) : "ok");
		_exit(0);
	}
	wait(NULL);
	for (i = 0; i < 1100; i++)
		if (pipe(p) || (size = fcntl(p[0], F_GETPIPE_SZ)) < 65536)
			break;
	printf("root: 1100 pipes of 65536: %d\n", i == 1100);
	return 0;
}
