/* Changes made by one process are seen at once by another (the Sentry's
 * dentry, attribute and page caches must not hide them).  argv[1] is a
 * directory holding "f" ("hello\n") and "g" ("gone\n") made before the
 * program starts (so in the sandbox they come from the Gofer).  The parent
 * looks at every file first (filling the caches), then a child makes each
 * change and exits; the parent, after waitpid, looks again.  Only sizes,
 * modes, contents and errnos are printed: they must match natively. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[4096];

static const char *p(const char *name)
{
    static char buf[2][4200];
    static int i;
    i ^= 1;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

static void look(const char *name)
{
    struct stat st;
    if (stat(p(name), &st) < 0) {
        printf("  stat %s: %s\n", name, strerrorname_np(errno));
    } else {
        printf("  stat %s: %s size %lld mode %o nlink %ld\n", name,
               S_ISDIR(st.st_mode) ? "dir" : "file", S_ISDIR(st.st_mode) ? 0LL
               : (long long)st.st_size, st.st_mode & 07777,
               S_ISDIR(st.st_mode) ? 0L : (long)st.st_nlink);
    }
    int fd = open(p(name), O_RDONLY);
    if (fd < 0) {
        printf("  open %s: %s\n", name, strerrorname_np(errno));
        return;
    }
    char buf[64] = {0};
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n < 0)
        printf("  read %s: %s\n", name, strerrorname_np(errno));
    else
        printf("  read %s: %zd \"%.*s\"\n", name, n, (int)n, buf);
    close(fd);
}

static void in_child(const char *what, int (*change)(void))
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(change() < 0 ? 1 : 0);
    int status;
    waitpid(pid, &status, 0);
    printf("%s: child %s\n", what, WIFEXITED(status) && !WEXITSTATUS(status) ? "ok" : "failed");
}

static int append(void)
{
    int fd = open(p("f"), O_WRONLY | O_APPEND);
    return fd < 0 ? -1 : (int)write(fd, "world\n", 6) - 6;
}
static int chmod_f(void) { return chmod(p("f"), 0600); }
static int rename_f(void) { return rename(p("f"), p("h")); }
static int unlink_g(void) { return unlink(p("g")); }
static int recreate_g(void)
{
    int fd = open(p("g"), O_WRONLY | O_CREAT | O_EXCL, 0640);
    return fd < 0 ? -1 : (int)write(fd, "new", 3) - 3;
}
static int create_x(void)
{
    int fd = open(p("x"), O_WRONLY | O_CREAT, 0644);
    return fd < 0 ? -1 : close(fd);
}
static int link_h(void) { return link(p("h"), p("k")); }
static int truncate_h(void) { return truncate(p("h"), 2); }
static int pwrite_k(void)
{
    int fd = open(p("k"), O_WRONLY);
    return fd < 0 ? -1 : (int)pwrite(fd, "XY", 2, 0) - 2;
}
static int mkdir_d(void) { return mkdir(p("d"), 0750); }
static int rename_over(void) { return rename(p("g"), p("h")); }

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    snprintf(dir, sizeof dir, "%s", argv[1]);
    umask(022);
    const char *names[] = {"f", "g", "h", "k", "x", "d"};
    printf("before\n");
    for (unsigned i = 0; i < 6; i++)
        look(names[i]);
    struct { const char *what; int (*fn)(void); } steps[] = {
        {"append to f", append}, {"chmod f 0600", chmod_f}, {"rename f to h", rename_f},
        {"unlink g", unlink_g}, {"create g again", recreate_g}, {"create x", create_x},
        {"link h as k", link_h}, {"truncate h to 2", truncate_h},
        {"pwrite k (h's other name)", pwrite_k}, {"mkdir d", mkdir_d},
        {"rename g over h", rename_over},
    };
    for (unsigned s = 0; s < sizeof steps / sizeof *steps; s++) {
        in_child(steps[s].what, steps[s].fn);
        for (unsigned i = 0; i < 6; i++)
            look(names[i]);
    }
    return 0;
}
