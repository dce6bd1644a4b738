/* name_to_handle_at/open_by_handle_at (issue 14's name_to_handle_at01-03):
 * a handle opens the file it names (same inode), a too small handle is
 * EOVERFLOW with the needed size given back, a too large one EINVAL, and
 * opening needs CAP_DAC_READ_SEARCH. Sizes are not printed: each filesystem
 * encodes its own. Run as root; argument: a fresh directory. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(const char *what, long r) {
	printf("%s: %s\n", what, r < 0 ? strerrorname_np(errno) : "ok");
}

int main(int argc, char **argv) {
	char file[512];
	struct file_handle probe = {0}, *fh, big = {.handle_bytes = 129};
	struct stat a, b;
	int mnt, fd;

	if (argc < 2)
		return 2;
	setvbuf(stdout, NULL, _IONBF, 0);
	snprintf(file, sizeof file, "%s/named", argv[1]);
	close(open(file, O_CREAT | O_WRONLY, 0644));
	show("size 0", name_to_handle_at(AT_FDCWD, file, &probe, &mnt, 0));
	printf("needed size given: %d\n", probe.handle_bytes > 0 && probe.handle_bytes <= 128);
	show("size 129", name_to_handle_at(AT_FDCWD, file, &big, &mnt, 0));
	show("bad flags", name_to_handle_at(AT_FDCWD, file, &probe, &mnt, 0x8000));
	show("empty path without AT_EMPTY_PATH", name_to_handle_at(AT_FDCWD, "", &probe, &mnt, 0));
	fh = calloc(1, sizeof(*fh) + probe.handle_bytes);
	fh->handle_bytes = probe.handle_bytes;
	show("name_to_handle_at", name_to_handle_at(AT_FDCWD, file, fh, &mnt, 0));
	fd = open_by_handle_at(AT_FDCWD, fh, O_RDWR);
	show("open_by_handle_at O_RDWR", fd);
	stat(file, &a);
	fstat(fd, &b);
	printf("same inode: %d\n", a.st_ino == b.st_ino && a.st_dev == b.st_dev);
	printf("write through it: %zd\n", write(fd, "hi", 2));
	close(fd);
	fd = open(argv[1], O_RDONLY | O_DIRECTORY);
	show("handle of a directory by fd", name_to_handle_at(fd, "", fh, &mnt, AT_EMPTY_PATH));
	show("open it", open_by_handle_at(AT_FDCWD, fh, O_RDONLY | O_DIRECTORY));
	if (fork() == 0) {
		if (setresuid(65534, 65534, 65534))
			_exit(9);
		show("open_by_handle_at without CAP_DAC_READ_SEARCH", open_by_handle_at(AT_FDCWD, fh, O_RDONLY));
		_exit(0);
	}
	wait(NULL);
	return 0;
}
