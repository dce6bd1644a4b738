/* Time namespaces against Linux (time_namespaces(7)): unshare(CLONE_NEWTIME),
 * /proc/self/timens_offsets written before a process enters and EACCES
 * after, the offsets in clock_gettime (the vDSO's and the syscall's),
 * sysinfo, /proc/uptime, clock_nanosleep and timerfd with an absolute time,
 * and setns back.  Prints relations between clock readings, never times. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NSEC 1000000000LL

static long long now_libc(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return ts.tv_sec * NSEC + ts.tv_nsec;
}

static long long now_sys(clockid_t c)
{
	struct timespec ts;
	syscall(SYS_clock_gettime, c, &ts);
	return ts.tv_sec * NSEC + ts.tv_nsec;
}

/* Whether b - a is within [off, off + 2 s) seconds. */
static int shifted(long long a, long long b, long long off)
{
	long long d = b - a - off * NSEC;
	return d >= 0 && d < 2 * NSEC;
}

static ino_t ino_of(const char *path)
{
	struct stat st;
	return stat(path, &st) ? 0 : st.st_ino;
}

static const char *write_offsets(const char *text)
{
	int fd = open("/proc/self/timens_offsets", O_WRONLY);
	if (fd < 0)
		return strerror(errno);
	ssize_t n = write(fd, text, strlen(text));
	int e = errno;
	close(fd);
	return n < 0 ? strerror(e) : "ok";
}

static void show_offsets(const char *who)
{
	char buf[256] = {0};
	int fd = open("/proc/self/timens_offsets", O_RDONLY);
	read(fd, buf, sizeof(buf) - 1);
	close(fd);
	printf("%s: timens_offsets:\n%s", who, buf);
}

static long proc_uptime(void)
{
	long s = 0, r = 0;
	FILE *f = fopen("/proc/uptime", "r");
	fscanf(f, "%ld.%ld", &s, &r);
	fclose(f);
	return s + (r ? 1 : 0);
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	int parent_ns = open("/proc/self/ns/time", O_RDONLY);
	printf("first namespace: write %s\n", write_offsets("1 10 0"));
	if (unshare(CLONE_NEWTIME)) {
		printf("unshare: %s\n", strerror(errno));
		return 1;
	}
	printf("after unshare: time != time_for_children: %d\n",
	       ino_of("/proc/self/ns/time") != ino_of("/proc/self/ns/time_for_children"));
	printf("bad clock: %s\n", write_offsets("0 10 0"));
	printf("bad nsec: %s\n", write_offsets("1 10 1000000000"));
	printf("write: %s\n", write_offsets("1 100 0\nboottime -5 500"));
	show_offsets("parent");
	long long mono = now_sys(CLOCK_MONOTONIC), boot = now_sys(CLOCK_BOOTTIME);
	long long mono_v = now_libc(CLOCK_MONOTONIC), real = now_libc(CLOCK_REALTIME);
	long long raw = now_libc(CLOCK_MONOTONIC_RAW), coarse = now_libc(CLOCK_MONOTONIC_COARSE);
	struct sysinfo si;
	sysinfo(&si);
	long up = si.uptime;
	printf("parent: clocks unshifted: %d\n", shifted(mono, now_libc(CLOCK_MONOTONIC), 0));
	pid_t pid = fork();
	if (pid == 0) {
		printf("child: time == parent's time_for_children: %d\n",
		       ino_of("/proc/self/ns/time") == ino_of("/proc/self/ns/time_for_children"));
		printf("child: MONOTONIC +100 (syscall %d, vDSO %d)\n",
		       shifted(mono, now_sys(CLOCK_MONOTONIC), 100),
		       shifted(mono_v, now_libc(CLOCK_MONOTONIC), 100));
		printf("child: MONOTONIC_RAW/COARSE +100: %d %d\n",
		       shifted(raw, now_libc(CLOCK_MONOTONIC_RAW), 100),
		       shifted(coarse, now_libc(CLOCK_MONOTONIC_COARSE), 100));
		printf("child: BOOTTIME -5 (syscall %d, vDSO %d)\n",
		       shifted(boot, now_sys(CLOCK_BOOTTIME), -5),
		       shifted(boot, now_libc(CLOCK_BOOTTIME), -5));
		printf("child: REALTIME unshifted: %d\n", shifted(real, now_libc(CLOCK_REALTIME), 0));
		sysinfo(&si);
		printf("child: sysinfo uptime -5: %d, /proc/uptime agrees: %d\n",
		       si.uptime - up >= -5 && si.uptime - up <= -3,
		       si.uptime >= proc_uptime() - 1 && si.uptime <= proc_uptime());
		printf("child: write after entering: %s\n", write_offsets("1 1 0"));
		struct timespec until = {0};
		long long target = now_sys(CLOCK_MONOTONIC) + 20000000;
		until.tv_sec = target / NSEC;
		until.tv_nsec = target % NSEC;
		int r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
		printf("child: clock_nanosleep ABSTIME in the namespace: %d, woke after it: %d\n",
		       r, now_sys(CLOCK_MONOTONIC) >= target);
		int tfd = timerfd_create(CLOCK_BOOTTIME, 0);
		struct itimerspec its = {0};
		target = now_sys(CLOCK_BOOTTIME) + 20000000;
		its.it_value.tv_sec = target / NSEC;
		its.it_value.tv_nsec = target % NSEC;
		timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
		uint64_t ticks = 0;
		read(tfd, &ticks, sizeof(ticks));
		printf("child: timerfd ABSTIME: %llu tick, after it: %d\n",
		       (unsigned long long)ticks, now_sys(CLOCK_BOOTTIME) >= target);
		printf("child: setns back: %s\n",
		       setns(parent_ns, CLONE_NEWTIME) ? strerror(errno) : "ok");
		printf("child: MONOTONIC unshifted again (syscall %d, vDSO %d)\n",
		       shifted(mono, now_sys(CLOCK_MONOTONIC), 0),
		       shifted(mono_v, now_libc(CLOCK_MONOTONIC), 0));
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	printf("parent: write after a child entered: %s\n", write_offsets("1 1 0"));
	printf("parent: still unshifted: %d\n", shifted(mono, now_libc(CLOCK_MONOTONIC), 0));
	return 0;
}
