/* fallocate on a size-limited tmpfs reserves its pages: a full filesystem
 * still lets the file be written inside the reserved range, st_blocks counts
 * them, and a reservation that does not fit is ENOSPC.  Usage: PROG DIR. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
	char a[4096], b[4096], buf[4096];
	struct stat st;
	if (argc < 2 || mount("none", argv[1], "tmpfs", 0, "size=64k")) {
		perror("mount");
		return 1;
	}
	snprintf(a, sizeof a, "%s/a", argv[1]);
	snprintf(b, sizeof b, "%s/b", argv[1]);
	int fa = open(a, O_CREAT | O_RDWR, 0600), fb = open(b, O_CREAT | O_RDWR, 0600);
	printf("fallocate 32k: %d\n", fallocate(fa, 0, 0, 32768));
	fstat(fa, &st);
	printf("size %ld blocks %ld\n", (long)st.st_size, (long)st.st_blocks);
	errno = 0;
	int r = fallocate(fb, 0, 0, 1 << 20);
	printf("fallocate 1M: %d %s\n", r, strerror(errno));
	fstat(fb, &st);
	printf("b size %ld blocks %ld\n", (long)st.st_size, (long)st.st_blocks);
	memset(buf, 'x', sizeof buf);
	long n, total = 0;
	while ((n = write(fb, buf, sizeof buf)) > 0)
		total += n;
	printf("filled b with %ld: %s\n", total, strerror(errno));
	total = 0;
	for (int i = 0; i < 8; i++)
		total += pwrite(fa, buf, sizeof buf, i * 4096);
	printf("wrote into reserved a: %ld\n", total);
	ftruncate(fa, 0);
	fstat(fa, &st);
	printf("after truncate blocks %ld\n", (long)st.st_blocks);
	printf("write b again: %ld\n", (long)write(fb, buf, sizeof buf));
	close(fa);
	close(fb);
	umount(argv[1]);
	return 0;
}
