/* memfd_create(MFD_HUGETLB | size): a huge page size the kernel has no pool
 * for is ENODEV, the size bits without MFD_HUGETLB EINVAL; 2 MiB (x86-64's
 * default pool, listed in /sys/kernel/mm/hugepages) works even with no
 * pages in the pool (the LTP's memfd_create04). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 4U
#endif

static void try(const char *what, unsigned flags) {
    errno = 0;
    int fd = memfd_create("huge", flags);
    printf("%s: %s errno %d\n", what, fd >= 0 ? "ok" : "failed", fd >= 0 ? 0 : errno);
    if (fd >= 0) close(fd);
}

int main(void) {
    try("64 KiB", MFD_HUGETLB | 16U << 26);
    try("16 GiB", MFD_HUGETLB | 34U << 26);
    try("2 MiB bits without MFD_HUGETLB", 21U << 26);
    try("an unknown flag with MFD_HUGETLB", MFD_HUGETLB | 0x100);
    if (access("/sys/kernel/mm/hugepages/hugepages-2048kB", F_OK) == 0)
        try("2 MiB", MFD_HUGETLB | 21U << 26);
    else
        printf("2 MiB: no pool on this host\n");
    return 0;
}
