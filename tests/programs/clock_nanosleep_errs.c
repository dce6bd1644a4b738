/* clock_nanosleep's errors by clock: sleeps on REALTIME, MONOTONIC, BOOTTIME
 * and TAI; EOPNOTSUPP for clocks Linux reads but cannot sleep on; EINVAL for
 * no clock at all; then a bad timespec and a NULL one. Raw syscalls, so
 * glibc's own checks do not hide the kernel's answers. */
#define _GNU_SOURCE
#include <stdio.h>
#include <time.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(void) {
  struct timespec ts = {0, 1000};
 int ids[]={0,1,3,4,5,6,7,8,9,10,11,12,100}; setvbuf(stdout,NULL,_IOLBF,0);
 for(unsigned i=0;i<sizeof ids/sizeof*ids;i++){ long r=syscall(SYS_clock_nanosleep, ids[i], 0, &ts, NULL); printf("clock %d: %ld %s\n", ids[i], r, r<0?strerrorname_np(errno):"-"); }
 struct timespec bad={0,1000000000}; long r=syscall(SYS_clock_nanosleep,1,0,&bad,NULL); printf("bad ts: %ld %s\n", r, r<0?strerrorname_np(errno):"-");
 r=syscall(SYS_clock_nanosleep,1,0,NULL,NULL); printf("null ts: %ld %s\n", r, r<0?strerrorname_np(errno):"-");
 return 0;}
