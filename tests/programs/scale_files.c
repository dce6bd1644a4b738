/* Touches many files of a generated tree ROOT/dNNN/fNNN (NDIRS x NFILES) and
 * prints what it saw, so a sandboxed run can be compared with a native one:
 *
 *   pass 1: lstat every file, remembering its inode number;
 *   pass 2: open, fstat, read and close the first NOPEN files (the inode
 *           number must be the one lstat saw);
 *   pass 3: open and close the first file SAME times;
 *   pass 4: lstat MISSING distinct names that do not exist (ENOENT each);
 *   pass 5: lstat every file again: the inode numbers must not have changed.
 *
 * Each pass prints one line: how many calls succeeded, the first failure's
 * errno name and how many failed, and a checksum of what was read (sizes,
 * contents, link counts), never host-specific numbers such as st_dev.
 * Usage: scale_files ROOT NDIRS NFILES NOPEN SAME MISSING */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct tally {
    unsigned long ok, failed;
    int first_errno;
    uint64_t sum;
};

static void fail(struct tally *t) {
    if (t->failed++ == 0)
        t->first_errno = errno;
}

static void report(const char *pass, const struct tally *t) {
    printf("%s: ok=%lu failed=%lu first=%s sum=%016llx\n", pass, t->ok, t->failed,
           t->failed ? strerrorname_np(t->first_errno) : "-", (unsigned long long)t->sum);
}

static uint64_t mix(uint64_t h, uint64_t v) {
    return (h ^ v) * 0x100000001b3ULL;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s ROOT NDIRS NFILES NOPEN SAME MISSING\n", argv[0]);
        return 2;
    }
    const char *root = argv[1];
    long ndirs = atol(argv[2]), nfiles = atol(argv[3]), nopen = atol(argv[4]);
    long same = atol(argv[5]), missing = atol(argv[6]);
    long total = ndirs * nfiles;
    ino_t *inos = calloc((size_t)total, sizeof *inos);
    char path[4096], buf[8192];
    struct stat st;
    struct tally t;

    memset(&t, 0, sizeof t);
    for (long i = 0; i < total; i++) {
        snprintf(path, sizeof path, "%s/d%03ld/f%03ld", root, i / nfiles, i % nfiles);
        if (lstat(path, &st) != 0) {
            fail(&t);
            continue;
        }
        inos[i] = st.st_ino;
        t.ok++;
        t.sum = mix(mix(t.sum, (uint64_t)st.st_size), st.st_nlink);
    }
    report("lstat", &t);

    memset(&t, 0, sizeof t);
    for (long i = 0; i < nopen && i < total; i++) {
        snprintf(path, sizeof path, "%s/d%03ld/f%03ld", root, i / nfiles, i % nfiles);
        int fd = open(path, O_RDONLY);
        if (fd < 0) {
            fail(&t);
            continue;
        }
        ssize_t n = -1;
        if (fstat(fd, &st) == 0 && st.st_ino == inos[i])
            n = read(fd, buf, sizeof buf);
        if (n < 0) {
            fail(&t);
        } else {
            t.ok++;
            for (ssize_t k = 0; k < n; k++)
                t.sum = mix(t.sum, (unsigned char)buf[k]);
        }
        if (close(fd) != 0)
            fail(&t);
    }
    report("open", &t);

    memset(&t, 0, sizeof t);
    snprintf(path, sizeof path, "%s/d000/f000", root);
    for (long i = 0; i < same; i++) {
        int fd = open(path, O_RDONLY);
        if (fd < 0) {
            fail(&t);
            continue;
        }
        ssize_t n = pread(fd, buf, 16, 0);
        if (n < 0)
            fail(&t);
        else
            t.ok++, t.sum = mix(t.sum, (uint64_t)n);
        close(fd);
    }
    report("same", &t);

    memset(&t, 0, sizeof t);
    for (long i = 0; i < missing; i++) {
        snprintf(path, sizeof path, "%s/d%03ld/absent-%ld", root, i % ndirs, i);
        if (lstat(path, &st) == 0 || errno != ENOENT)
            fail(&t);
        else
            t.ok++;
    }
    report("missing", &t);

    memset(&t, 0, sizeof t);
    for (long i = 0; i < total; i++) {
        snprintf(path, sizeof path, "%s/d%03ld/f%03ld", root, i / nfiles, i % nfiles);
        if (lstat(path, &st) != 0) {
            fail(&t);
        } else if (st.st_ino != inos[i]) {
            errno = ESTALE;  /* the inode number changed under us */
            fail(&t);
        } else {
            t.ok++;
        }
    }
    report("relstat", &t);
    free(inos);
    return 0;
}
