/* Calls syscalls the sandbox does not implement, each twice (sandbox-only test:
 * the debug log must name each once, and the application sees ENOSYS). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    for (int i = 0; i < 2; i++) {
        long r = syscall(SYS_vserver, 1, 0L);
        printf("vserver %ld %s\n", r, r < 0 ? strerrorname_np(errno) : "ok");
        r = syscall(1000);
        printf("1000 %ld %s\n", r, r < 0 ? strerrorname_np(errno) : "ok");
    }
    return 0;
}
