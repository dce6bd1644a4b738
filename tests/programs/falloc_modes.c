/* fallocate(2) on tmpfs (/dev/shm in both runs), issue 14's fallocate02 and
 * fallocate03: KEEP_SIZE keeps the size, PUNCH_HOLE|KEEP_SIZE zeroes, and
 * vfs_fallocate's errors in their order. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void show(const char *what, long r) {
	printf("%s: %s\n", what, r < 0 ? strerrorname_np(errno) : "ok");
}

int main(void) {
	char path[64], buf[8] = {0};
	struct stat st;
	int fd, ro, p[2];

	setvbuf(stdout, NULL, _IONBF, 0);
	snprintf(path, sizeof path, "/dev/shm/pyvisor-falloc-%d", getpid());
	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
	write(fd, "abcdefgh", 8);
	show("KEEP_SIZE past the end", fallocate(fd, FALLOC_FL_KEEP_SIZE, 4096, 4096));
	fstat(fd, &st);
	printf("size %lld\n", (long long)st.st_size);
	show("mode 0 past the end", fallocate(fd, 0, 0, 100));
	fstat(fd, &st);
	printf("size %lld\n", (long long)st.st_size);
	show("PUNCH_HOLE|KEEP_SIZE", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2, 3));
	pread(fd, buf, 8, 0);
	printf("bytes %d %d %d %d %d %c\n", buf[1], buf[2], buf[3], buf[4], buf[5], buf[5] ? buf[5] : '0');
	show("PUNCH_HOLE alone", fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 1));
	show("COLLAPSE_RANGE", fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, 4096));
	show("length 0", fallocate(fd, 0, 0, 0));
	show("EFBIG", fallocate(fd, FALLOC_FL_KEEP_SIZE, 0x7fffffffffffff00LL, 0x1000));
	ro = open(path, O_RDONLY);
	show("read-only descriptor", fallocate(ro, 0, 0, 1));
	if (pipe(p) == 0)
		show("pipe", fallocate(p[1], 0, 0, 1));
	unlink(path);
	return 0;
}
