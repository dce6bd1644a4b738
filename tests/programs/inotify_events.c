/* inotify: watches on a directory and on a file in it, then creates, writes,
 * closes, chmods, renames (cookies paired), links, unlinks and removes, with
 * the events printed in order (wd as the watch's name, masks by name); plus
 * the call's errors, IN_MASK_ADD/CREATE, IN_ONESHOT, merging, FIONREAD and
 * a short read. The same natively and in the sandbox. Usage: inotify_events DIR */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static int wd_dir, wd_file;
static uint32_t first_cookie;

static void report(const char *what, long ret) {
    printf("%s: %ld %s\n", what, ret, ret < 0 ? strerrorname_np(errno) : "-");
    fflush(stdout);
}

static void masks(uint32_t m) {
    static const struct { uint32_t bit; const char *name; } names[] = {
        {IN_ACCESS, "ACCESS"}, {IN_MODIFY, "MODIFY"}, {IN_ATTRIB, "ATTRIB"},
        {IN_CLOSE_WRITE, "CLOSE_WRITE"}, {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"},
        {IN_OPEN, "OPEN"}, {IN_MOVED_FROM, "MOVED_FROM"}, {IN_MOVED_TO, "MOVED_TO"},
        {IN_CREATE, "CREATE"}, {IN_DELETE, "DELETE"}, {IN_DELETE_SELF, "DELETE_SELF"},
        {IN_MOVE_SELF, "MOVE_SELF"}, {IN_IGNORED, "IGNORED"}, {IN_ISDIR, "ISDIR"},
        {IN_Q_OVERFLOW, "Q_OVERFLOW"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (m & names[i].bit)
            printf(" %s", names[i].name);
}

static void drain(int fd, const char *step) {
    char buf[8192] __attribute__((aligned(8)));
    printf("-- %s\n", step);
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            const char *who = ev->wd == wd_dir ? "dir" : ev->wd == wd_file ? "file" : "?";
            printf("  %s", who);
            masks(ev->mask);
            if (ev->len)
                printf(" name=%s len%%16=%u", ev->name, ev->len % 16);
            if (ev->cookie) {
                if (!first_cookie)
                    first_cookie = ev->cookie;
                printf(" cookie=%s", ev->cookie == first_cookie ? "A" : "other");
            }
            printf("\n");
            p += sizeof *ev + ev->len;
        }
    }
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    char dir[4096], f[4200], g[4200], h[4200], sub[4200];
    snprintf(dir, sizeof dir, "%s/w", argv[1]);
    mkdir(dir, 0755);
    snprintf(f, sizeof f, "%s/f", dir);
    snprintf(g, sizeof g, "%s/g", dir);
    snprintf(h, sizeof h, "%s/h", dir);
    snprintf(sub, sizeof sub, "%s/sub", dir);

    report("init1 bad flags", inotify_init1(0x10));
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    report("add on a non-inotify fd", inotify_add_watch(0, dir, IN_ALL_EVENTS));
    report("add empty mask", inotify_add_watch(fd, dir, 0));
    report("add missing path", inotify_add_watch(fd, "/nonexistent/x", IN_ALL_EVENTS));
    wd_dir = inotify_add_watch(fd, dir, IN_ALL_EVENTS);
    report("add dir", wd_dir);
    report("add same dir again", inotify_add_watch(fd, dir, IN_CREATE) == wd_dir);
    report("add with mask create", inotify_add_watch(fd, dir, IN_CREATE | IN_MASK_CREATE));
    report("add with mask add", inotify_add_watch(fd, dir, IN_ALL_EVENTS | IN_MASK_ADD));
    report("add+create both", inotify_add_watch(fd, dir, IN_CREATE | IN_MASK_ADD |
                                                IN_MASK_CREATE));

    int file = open(f, O_CREAT | O_WRONLY, 0644);
    wd_file = inotify_add_watch(fd, f, IN_ALL_EVENTS);
    report("onlydir on a file", inotify_add_watch(fd, f, IN_ALL_EVENTS | IN_ONLYDIR));
    if (write(file, "abc", 3) != 3 || write(file, "def", 3) != 3)
        return 1;
    close(file);
    drain(fd, "create, two writes (merged), close");

    chmod(f, 0600);
    file = open(f, O_RDONLY);
    char c;
    if (read(file, &c, 1) != 1)
        return 1;
    close(file);
    drain(fd, "chmod, open, read, close");

    int avail = 0;
    rename(f, g);
    ioctl(fd, FIONREAD, &avail);
    printf("FIONREAD %d\n", avail);
    char small[8];
    report("short read", read(fd, small, sizeof small));
    drain(fd, "rename");

    link(g, h);
    unlink(h);
    unlink(g);
    drain(fd, "link, unlink both names");

    mkdir(sub, 0755);
    int once = inotify_add_watch(fd, sub, IN_CREATE | IN_ONESHOT);
    printf("oneshot wd is new: %d\n", once != wd_dir && once != wd_file);
    rmdir(sub);
    drain(fd, "mkdir, rmdir");
    char moved[4200];
    snprintf(moved, sizeof moved, "%s/moved", dir);
    mkdir(sub, 0755);
    wd_file = inotify_add_watch(fd, sub, IN_MOVE_SELF | IN_DELETE_SELF);
    rename(sub, moved);
    rmdir(moved);
    drain(fd, "a watched directory moved and removed (its own events: no ISDIR)");
    report("rm unknown wd", inotify_rm_watch(fd, 999));
    report("rm dir watch", inotify_rm_watch(fd, wd_dir));
    drain(fd, "rm_watch");
    rmdir(dir);
    drain(fd, "nothing after the watch is gone");
    return 0;
}
