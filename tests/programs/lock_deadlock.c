/* fcntl(F_SETLKW) deadlock detection (issue 14's fcntl17): the parent holds
 * byte 0 and its child byte 1, then each waits for the other's byte. Whoever
 * would close the cycle gets EDEADLK instead of sleeping (which one depends
 * on timing, so only the count is printed); the other then gets its lock once
 * the first lets go. Argument: a fresh directory. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int lock(int fd, int type, off_t start, int cmd) {
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = 1};
	return fcntl(fd, cmd, &fl);
}

int main(int argc, char **argv) {
	char file[512];
	int fd, ready[2], st;
	pid_t child;
	char c;

	if (argc < 2 || pipe(ready))
		return 2;
	setvbuf(stdout, NULL, _IONBF, 0);
	snprintf(file, sizeof file, "%s/locked", argv[1]);
	fd = open(file, O_CREAT | O_RDWR, 0644);
	if (write(fd, "ab", 2) != 2 || lock(fd, F_WRLCK, 0, F_SETLK))
		return 3;
	child = fork();
	if (child == 0) {
		lock(fd, F_WRLCK, 1, F_SETLK);
		write(ready[1], "r", 1);
		/* Exit (which drops byte 1) with 1 for EDEADLK, 0 once byte 0 is ours. */
		_exit(lock(fd, F_WRLCK, 0, F_SETLKW) == 0 ? 0 : errno == EDEADLK ? 1 : 2);
	}
	if (read(ready[0], &c, 1) != 1)
		return 4;
	printf("F_SETLK byte 1: %s\n", lock(fd, F_WRLCK, 1, F_SETLK) ? strerrorname_np(errno) : "ok");
	int mine = lock(fd, F_WRLCK, 1, F_SETLKW) == 0 ? 0 : errno;
	if (mine)
		lock(fd, F_UNLCK, 0, F_SETLK);  /* let the child have byte 0 */
	waitpid(child, &st, 0);
	int childs = WIFEXITED(st) ? WEXITSTATUS(st) : 99;
	printf("deadlocks detected: %d\n", (mine == EDEADLK) + (childs == 1));
	printf("the other waiter got its lock: %d\n", (mine == 0) != (childs == 0));
	return 0;
}
