/* vm.max_map_count against Linux: mmap until the mapping count limit
 * (ENOMEM, not a dead process), then a munmap that would split one mapping
 * in two is ENOMEM too, and one that removes a whole mapping works.  Both
 * run at the default limit (65530): the host's is never written. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
int main(void)
{
	long pg = 4096, n = 0;
	char *addr = (char *)0x10000000UL, *first = NULL;
	for (;; addr += 6 * pg) {
		void *p = mmap(addr, 3 * pg, PROT_NONE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (p == MAP_FAILED && errno == EEXIST)
			continue;
		if (p == MAP_FAILED) {
			printf("mmap stops with %s\n", strerror(errno));
			break;
		}
		if (!first)
			first = p;
		n++;
	}
	printf("mapped > 65000: %d\n", n > 65000);
	printf("munmap splitting one: %s\n",
	       munmap(first + pg, pg) ? strerror(errno) : "ok");
	printf("munmap a whole one: %s\n", munmap(first, 3 * pg) ? strerror(errno) : "ok");
	return 0;
}
