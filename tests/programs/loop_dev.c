/* Loop devices: /dev/loop-control, LOOP_SET_FD over a file, status calls,
 * I/O through the device, capacity, LOOP_CONFIGURE, LOOP_CLR_FD.
 * Nothing printed depends on which device number was free.  Usage: PROG DIR. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define SHOW(what, expr) do { errno = 0; long r_ = (long)(expr); \
	printf("%-30s %ld %s\n", what, r_ < 0 ? r_ : 0L, r_ < 0 ? strerror(errno) : ""); } while (0)

static int devfd;
static char dev[64];

static void status(const char *when) {
	struct loop_info64 li;
	memset(&li, 0, sizeof li);
	errno = 0;
	int r = ioctl(devfd, LOOP_GET_STATUS64, &li);
	printf("%s: status %d %s flags %u offset %llu limit %llu name '%s'\n", when, r,
	       r ? strerror(errno) : "", li.lo_flags, (unsigned long long)li.lo_offset,
	       (unsigned long long)li.lo_sizelimit, (char *)li.lo_file_name);
	uint64_t size = 0;
	ioctl(devfd, BLKGETSIZE64, &size);
	printf("%s: size %llu\n", when, (unsigned long long)size);
}

int main(int argc, char **argv) {
	char img[4096], img2[4096], buf[4096];
	if (argc < 2)
		return 2;
	snprintf(img, sizeof img, "%s/img", argv[1]);
	snprintf(img2, sizeof img2, "%s/img2", argv[1]);
	int f = open(img, O_CREAT | O_RDWR, 0600);
	memset(buf, 'i', sizeof buf);
	for (int i = 0; i < 64; i++)
		write(f, buf, sizeof buf);
	int ctl = open("/dev/loop-control", O_RDWR);
	printf("loop-control open %d\n", ctl >= 0);
	struct stat st;
	fstat(ctl, &st);
	printf("loop-control rdev %u:%u chr %d\n", major(st.st_rdev), minor(st.st_rdev),
	       S_ISCHR(st.st_mode));
	int n = ioctl(ctl, LOOP_CTL_GET_FREE);
	printf("get_free ok %d\n", n >= 0);
	SHOW("ctl add existing", ioctl(ctl, LOOP_CTL_ADD, n));
	snprintf(dev, sizeof dev, "/dev/loop%d", n);
	devfd = open(dev, O_RDWR);
	printf("dev open %d\n", devfd >= 0);
	fstat(devfd, &st);
	printf("dev major %u blk %d\n", major(st.st_rdev), S_ISBLK(st.st_mode));
	status("unbound");
	SHOW("clr unbound", ioctl(devfd, LOOP_CLR_FD, 0));
	SHOW("set_fd dir", ioctl(devfd, LOOP_SET_FD, open(argv[1], O_RDONLY)));
	SHOW("set_fd badf", ioctl(devfd, LOOP_SET_FD, 999));
	SHOW("set_fd", ioctl(devfd, LOOP_SET_FD, f));
	SHOW("set_fd again", ioctl(devfd, LOOP_SET_FD, f));
	status("bound");
	SHOW("ctl remove bound", ioctl(ctl, LOOP_CTL_REMOVE, n));
	struct loop_info64 li;
	memset(&li, 0, sizeof li);
	li.lo_offset = 4096;
	li.lo_sizelimit = 65536;
	li.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_READ_ONLY | LO_FLAGS_PARTSCAN;
	strcpy((char *)li.lo_file_name, "named");
	SHOW("set_status64", ioctl(devfd, LOOP_SET_STATUS64, &li));
	status("status set");
	li.lo_flags = 0;
	SHOW("set_status64 clear", ioctl(devfd, LOOP_SET_STATUS64, &li));
	status("cleared");
	SHOW("pwrite dev", pwrite(devfd, "DEVDATA", 7, 10));
	SHOW("fsync dev", fsync(devfd));
	SHOW("pread file", pread(f, buf, 7, 4096 + 10));
	printf("file sees %.7s\n", buf);
	SHOW("pwrite past end", pwrite(devfd, "x", 1, 65536));
	SHOW("pread past end", pread(devfd, buf, 10, 65536));
	SHOW("block size 1000", ioctl(devfd, LOOP_SET_BLOCK_SIZE, 1000));
	SHOW("block size 1024", ioctl(devfd, LOOP_SET_BLOCK_SIZE, 1024));
	int bs = 0;
	ioctl(devfd, BLKSSZGET, &bs);
	printf("logical block size %d\n", bs);
	li.lo_sizelimit = 0;
	SHOW("set_status64 nolimit", ioctl(devfd, LOOP_SET_STATUS64, &li));
	ftruncate(f, 512 * 1024);
	status("file grown");
	SHOW("set_capacity", ioctl(devfd, LOOP_SET_CAPACITY, 0));
	status("capacity");
	SHOW("change_fd rw dev", ioctl(devfd, LOOP_CHANGE_FD, f));
	SHOW("clr", ioctl(devfd, LOOP_CLR_FD, 0));
	status("cleared fd");
	SHOW("clr again", ioctl(devfd, LOOP_CLR_FD, 0));
	SHOW("set_fd in rundown", ioctl(devfd, LOOP_SET_FD, f));
	SHOW("read in rundown", pread(devfd, buf, 10, 0));
	close(devfd);
	devfd = open(dev, O_RDWR);
	status("reopened");

	int f2 = open(img2, O_CREAT | O_RDWR, 0600);
	ftruncate(f2, 8192);
	struct loop_config cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.fd = f2;
	cfg.block_size = 3000;
	SHOW("configure bad bs", ioctl(devfd, LOOP_CONFIGURE, &cfg));
	cfg.block_size = 4096;
	cfg.info.lo_flags = LO_FLAGS_READ_ONLY;
	SHOW("configure ro", ioctl(devfd, LOOP_CONFIGURE, &cfg));
	status("configured");
	SHOW("write ro", pwrite(devfd, "x", 1, 0));
	struct statx sx;
	memset(&sx, 0, sizeof sx);
	SHOW("statx dioalign", statx(AT_FDCWD, dev, 0, STATX_DIOALIGN, &sx));
	printf("dioalign %d mem %u offset %u\n", !!(sx.stx_mask & STATX_DIOALIGN),
	       sx.stx_dio_mem_align, sx.stx_dio_offset_align);
	int ro = -1;
	ioctl(devfd, BLKROGET, &ro);
	printf("BLKROGET %d\n", ro);
	int f3 = open(img, O_RDONLY);
	SHOW("change_fd other size", ioctl(devfd, LOOP_CHANGE_FD, f3));
	SHOW("clr", ioctl(devfd, LOOP_CLR_FD, 0));
	close(devfd);
	SHOW("ctl remove", ioctl(ctl, LOOP_CTL_REMOVE, n));
	SHOW("ctl remove again", ioctl(ctl, LOOP_CTL_REMOVE, n));
	return 0;
}
