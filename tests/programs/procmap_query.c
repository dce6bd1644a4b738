/* ioctl(PROCMAP_QUERY) on /proc/self/maps (Linux 6.11): the VMA covering an
 * address (or the next one), filtered by its r/w/x/s flags, ENOENT when none,
 * EINVAL for a short struct or unknown flags (the LTP's ioctl10). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

struct pq {
    uint64_t size, query_flags, query_addr, vma_start, vma_end, vma_flags, vma_page_size,
        vma_offset, inode;
    uint32_t dev_major, dev_minor, vma_name_size, build_id_size;
    uint64_t vma_name_addr, build_id_addr;
};
#define PROCMAP_QUERY _IOWR('f', 17, struct pq)
#define PG 4096L

static char *base;

static void ask(const char *what, int fd, uint64_t addr, uint64_t flags, uint64_t size) {
    struct pq q;
    memset(&q, 0, sizeof q);
    q.size = size;
    q.query_addr = addr;
    q.query_flags = flags;
    errno = 0;
    int r = ioctl(fd, PROCMAP_QUERY, &q);
    if (r < 0) {
        printf("%s: errno %d\n", what, errno);
        return;
    }
    printf("%s: [+%ld, +%ld) flags %lu page %lu name size %u\n", what,
           (long)(q.vma_start - (uint64_t)base), (long)(q.vma_end - (uint64_t)base),
           (unsigned long)q.vma_flags, (unsigned long)q.vma_page_size, q.vma_name_size);
}

int main(void) {
    base = mmap(NULL, 8 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(base + PG, 2 * PG, PROT_READ | PROT_WRITE);
    mprotect(base + 5 * PG, PG, PROT_READ);
    int fd = open("/proc/self/maps", O_RDONLY);
    ask("rw mapping", fd, (uint64_t)base + PG + 100, 0, sizeof(struct pq));
    ask("prot none", fd, (uint64_t)base + 4 * PG, 0, sizeof(struct pq));
    ask("readable from prot none", fd, (uint64_t)base + 3 * PG, 0x1, sizeof(struct pq));
    ask("readable or next", fd, (uint64_t)base + 3 * PG, 0x1 | 0x10, sizeof(struct pq));
    ask("writable at the read-only one", fd, (uint64_t)base + 5 * PG, 0x2, sizeof(struct pq));
    ask("short struct", fd, (uint64_t)base, 0, 16);
    ask("unknown flag", fd, (uint64_t)base, 0x1000, sizeof(struct pq));
    munmap(base + 6 * PG, 2 * PG);
    ask("hole, exact", fd, (uint64_t)base + 6 * PG, 0, sizeof(struct pq));
    return 0;
}
