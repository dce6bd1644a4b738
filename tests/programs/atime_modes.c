/* atime on read by mount mode (relatime default, strictatime, noatime,
 * nodiratime), made deterministic with utimensat instead of waiting: a file's
 * times are set, then read, and whether atime moved is printed.
 * Usage: PROG DIR (root, in its own mount namespace). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char f[4096], d[4096];

/* Set atime/mtime (seconds ago), read the file and list the directory;
 * print whether each atime moved. */
static void probe(const char *mode, long a_ago, long m_ago) {
	time_t now = time(NULL);
	struct timespec ts[2] = {{now - a_ago, 0}, {now - m_ago, 0}};
	utimensat(AT_FDCWD, f, ts, 0);
	utimensat(AT_FDCWD, d, ts, 0);
	struct stat before, dbefore, after, dafter;
	stat(f, &before);
	stat(d, &dbefore);
	char buf[8];
	int fd = open(f, O_RDONLY);
	read(fd, buf, sizeof buf);
	close(fd);
	DIR *dir = opendir(d);
	while (readdir(dir))
		;
	closedir(dir);
	stat(f, &after);
	stat(d, &dafter);
	printf("%-12s atime %lds ago, mtime %lds ago: file moved %d, dir moved %d\n", mode, a_ago,
	       m_ago, after.st_atime != before.st_atime, dafter.st_atime != dbefore.st_atime);
}

static void with_mount(const char *mode, unsigned long flags) {
	if (mount("none", d, "tmpfs", flags, NULL)) {
		printf("mount %s: %s\n", mode, strerror(errno));
		return;
	}
	int fd = open(f, O_CREAT | O_WRONLY, 0600);
	write(fd, "data", 4);
	close(fd);
	probe(mode, 100, 50);          /* atime before mtime */
	probe(mode, 10, 50);           /* atime after mtime, recent */
	probe(mode, 90000, 100000);    /* atime after mtime, over a day old */
	umount(d);
}

int main(int argc, char **argv) {
	if (argc < 2)
		return 2;
	snprintf(d, sizeof d, "%s", argv[1]);
	snprintf(f, sizeof f, "%s/file", argv[1]);
	with_mount("relatime", 0);
	with_mount("strictatime", MS_STRICTATIME);
	with_mount("noatime", MS_NOATIME);
	with_mount("nodiratime", MS_NODIRATIME | MS_STRICTATIME);
	return 0;
}
