/* inotify details LTP checks (issue 14): /proc/PID/fdinfo shows each watch's
 * mask, a directory watch with IN_EXCL_UNLINK hears nothing of an unlinked
 * child (one without it still does), and with an argument N, the N+1th
 * instance is EMFILE once max_user_instances is N (sandbox only: natively
 * that would change the host's limit). Argument 1: a fresh directory. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

static unsigned fdinfo_mask(int fd) {
	char path[64], line[256];
	unsigned mask = 0;
	FILE *f;

	snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "inotify wd:%*x ino:%*x sdev:%*x mask:%x", &mask) == 1)
			break;
	if (f)
		fclose(f);
	return mask;
}

static int events_after_unlink(const char *dir, unsigned extra) {
	char file[512], buf[4096];
	int in = inotify_init1(IN_NONBLOCK), fd, n = 0;
	ssize_t len;

	snprintf(file, sizeof file, "%s/f", dir);
	fd = open(file, O_CREAT | O_RDWR, 0644);
	inotify_add_watch(in, dir, IN_MODIFY | extra);
	printf("fdinfo mask %x\n", fdinfo_mask(in));
	unlink(file);
	write(fd, "x", 1);
	close(fd);
	while ((len = read(in, buf, sizeof buf)) > 0)
		for (char *p = buf; p < buf + len; p += sizeof(struct inotify_event) +
		     ((struct inotify_event *)p)->len)
			if (((struct inotify_event *)p)->mask & IN_MODIFY)
				n++;
	close(in);
	return n;
}

int main(int argc, char **argv) {
	if (argc < 2)
		return 2;
	setvbuf(stdout, NULL, _IONBF, 0);
	printf("IN_MODIFY events after unlink, plain watch: %d\n", events_after_unlink(argv[1], 0));
	printf("IN_MODIFY events after unlink, IN_EXCL_UNLINK: %d\n",
	       events_after_unlink(argv[1], IN_EXCL_UNLINK));
	if (argc > 2) {
		int limit = atoi(argv[2]), i, fd = -1, last = -1;
		FILE *f = fopen("/proc/sys/fs/inotify/max_user_instances", "w");
		if (!f || fprintf(f, "%d", limit) < 0 || fclose(f))
			return 3;
		for (i = 0; i <= limit; i++) {
			fd = inotify_init();
			if (fd >= 0)
				last = fd;
		}
		printf("instance %d: %s\n", limit + 1, fd < 0 ? strerrorname_np(errno) : "ok");
		close(last);
		printf("after closing one: %s\n", inotify_init() < 0 ? strerrorname_np(errno) : "ok");
	}
	return 0;
}
