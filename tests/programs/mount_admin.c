/* Administration inside a sandbox (issue 14): mount, bind, remount, umount,
   pivot_root, UTS namespaces and setns, and what a task without
   CAP_SYS_ADMIN gets.  argv[1]: an empty directory to work in.  Natively it
   runs under `unshare --mount --uts --ipc --fork`, so the host is not changed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

static char path[4096], dir[1024];

static const char *P(const char *rel) {
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return path;
}

static const char *en(int r) {
    return r == 0 ? "0" : strerrorname_np(errno);
}

#define SHOW(what, call) do { errno = 0; int r_ = (call); printf("%s: %s\n", what, en(r_)); } while (0)

/* the mount-options column and type of the mount at ``target`` in mountinfo */
static void mountinfo(const char *target) {
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[4096];
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        char mp[2048], opts[512], fstype[64];
        if (sscanf(line, "%*d %*d %*s %*s %2047s %511s", mp, opts) != 2) continue;
        char *dash = strstr(line, " - ");
        if (!dash || sscanf(dash + 3, "%63s", fstype) != 1) continue;
        if (strcmp(mp, target) == 0) {
            printf("  mountinfo: %s %s\n", fstype, opts);
            found = 1;
        }
    }
    if (!found) printf("  mountinfo: none\n");
    fclose(f);
}

/* open and close at once: 0, or -1 with errno */
static int open_close(const char *p) {
    int fd = open(p, O_RDONLY);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int write_file(const char *p, const char *text) {
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    int r = write(fd, text, strlen(text)) < 0 ? -1 : 0;
    close(fd);
    return r;
}

static void mounts(void) {
    char a[1100];
    SHOW("mkdir", mkdir(P("a"), 0755) | mkdir(P("b"), 0755) | mkdir(P("c"), 0755));
    strcpy(a, P("a"));
    SHOW("mount tmpfs", mount("none", a, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755"));
    mountinfo(a);
    SHOW("write in tmpfs", write_file(P("a/f"), "hello\n"));
    SHOW("mkdir in tmpfs", mkdir(P("a/sub"), 0755));
    SHOW("write in sub", write_file(P("a/sub/g"), "sub\n"));
    char b[1100], sub[1100];
    strcpy(b, P("b"));
    strcpy(sub, P("a/sub"));
    SHOW("bind", mount(sub, b, NULL, MS_BIND, NULL));
    struct stat st;
    SHOW("bound file visible", stat(P("b/g"), &st));
    mountinfo(b);
    SHOW("remount bind ro", mount(NULL, b, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL));
    mountinfo(b);
    SHOW("write on ro bind", write_file(P("b/h"), "x"));
    SHOW("write through rw mount", write_file(P("a/sub/h"), "x"));
    SHOW("remount bind rw", mount(NULL, b, NULL, MS_REMOUNT | MS_BIND, NULL));
    SHOW("write again", write_file(P("b/h"), "y"));
    SHOW("make private", mount(NULL, b, NULL, MS_PRIVATE, NULL));
    SHOW("make shared", mount(NULL, b, NULL, MS_SHARED | MS_REC, NULL));
    SHOW("private with nosuid", mount(NULL, b, NULL, MS_PRIVATE | MS_NOSUID, NULL));
    SHOW("private then back", mount(NULL, b, NULL, MS_PRIVATE, NULL));
    SHOW("remount not a mount root", mount(NULL, P("a/sub"), NULL, MS_REMOUNT, NULL));
    /* busy mounts */
    int fd = open(P("b/g"), O_RDONLY);
    SHOW("umount busy", umount(b));
    close(fd);
    SHOW("umount after close", umount(b));
    mountinfo(b);
    SHOW("umount not mounted", umount(b));
    SHOW("umount2 bad flags", umount2(a, 0x100));
    SHOW("umount2 EXPIRE|DETACH", umount2(a, MNT_EXPIRE | MNT_DETACH));
    SHOW("umount missing", umount(P("nope")));
    SHOW("bind rec", mount(a, b, NULL, MS_BIND | MS_REC, NULL));
    SHOW("nested mount", mount("none", P("b/sub"), "tmpfs", 0, NULL));
    SHOW("umount with child", umount(b));
    fd = open(P("a/f"), O_RDONLY);
    SHOW("detach busy", umount2(a, MNT_DETACH));
    char buf[16] = {0};
    printf("read after detach: %zd %s", read(fd, buf, sizeof buf - 1), buf);
    close(fd);
    SHOW("file gone with the mount", stat(P("a/f"), &st));
    SHOW("detach b", umount2(b, MNT_DETACH));
    /* MNT_EXPIRE: marked by a first call, undone by any use in between */
    SHOW("mount c", mount("none", P("c"), "tmpfs", 0, NULL));
    SHOW("expire first", umount2(P("c"), MNT_EXPIRE));
    SHOW("access c", access(P("c"), F_OK));
    SHOW("expire after access", umount2(P("c"), MNT_EXPIRE));
    SHOW("expire second", umount2(P("c"), MNT_EXPIRE));
    /* IN_UNMOUNT (whatever the watch's mask), then IN_IGNORED */
    SHOW("mount c again", mount("none", P("c"), "tmpfs", 0, NULL));
    SHOW("file in c", write_file(P("c/w"), "w"));
    int in = inotify_init1(IN_NONBLOCK);
    SHOW("watch", inotify_add_watch(in, P("c/w"), IN_MODIFY) < 0 ? -1 : 0);
    SHOW("umount watched", umount(P("c")));
    char evbuf[256];
    ssize_t got = read(in, evbuf, sizeof evbuf);
    for (ssize_t off = 0; off < got;) {
        struct inotify_event *ev = (struct inotify_event *)(evbuf + off);
        printf("event mask %x\n", ev->mask);
        off += sizeof *ev + ev->len;
    }
    close(in);
    /* nodev: device nodes there do not open (EACCES), other files do */
    SHOW("mount c nodev", mount("none", P("c"), "tmpfs", MS_NODEV, NULL));
    SHOW("mknod on nodev", mknod(P("c/null"), S_IFCHR | 0666, makedev(1, 3)));
    SHOW("open dev on nodev", open_close(P("c/null")));
    SHOW("remount dev", mount("none", P("c"), NULL, MS_REMOUNT, NULL));
    SHOW("open dev after remount", open_close(P("c/null")));
    SHOW("umount c", umount(P("c")));
    /* bad input */
    SHOW("unknown type", mount("none", P("c"), "nosuchfs", 0, NULL));
    SHOW("no type", mount("none", P("c"), NULL, 0, NULL));
    SHOW("bad target pointer", mount("none", (char *)8, "tmpfs", 0, NULL));
    SHOW("bad type pointer", mount("none", P("c"), (char *)8, 0, NULL));
    SHOW("missing target", mount("none", P("nope/x"), "tmpfs", 0, NULL));
    SHOW("tmpfs bad option", mount("none", P("c"), "tmpfs", 0, "bogus=1"));
    SHOW("bind of missing", mount(P("nope"), P("c"), NULL, MS_BIND, NULL));
    SHOW("mount proc", mount("proc", P("c"), "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL));
    SHOW("proc has self", stat(P("c/self/status"), &st));
    mountinfo(P("c"));
    SHOW("umount proc", umount(P("c")));
    SHOW("mount sysfs", mount("sysfs", P("c"), "sysfs", MS_RDONLY, NULL));
    mountinfo(P("c"));
    SHOW("umount sysfs", umount(P("c")));
    SHOW("mount mqueue", mount("mqueue", P("c"), "mqueue", 0, NULL));
    mountinfo(P("c"));
    SHOW("umount mqueue", umount(P("c")));
    SHOW("mount devpts", mount("devpts", P("c"), "devpts", MS_NOSUID | MS_NOEXEC, "newinstance"));
    SHOW("devpts has ptmx", stat(P("c/ptmx"), &st));
    SHOW("umount devpts", umount(P("c")));
}

static void pivot(void) {
    /* in a child: the parent keeps its root */
    pid_t pid = fork();
    if (pid == 0) {
        char nr[1100];
        strcpy(nr, P("nr"));
        SHOW("unshare mount ns", unshare(CLONE_NEWNS));
        SHOW("make / private", mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
        char c[1100];
        strcpy(c, P("c"));
        SHOW("pivot not a mount point", (int)syscall(SYS_pivot_root, dir, c));
        SHOW("mount in own namespace", mount("none", c, "tmpfs", 0, NULL));
        mkdir(nr, 0755);
        SHOW("mount new root", mount("none", nr, "tmpfs", 0, NULL));
        mkdir(P("nr/old"), 0755);
        write_file(P("nr/marker"), "new root\n");
        SHOW("pivot put_old outside", (int)syscall(SYS_pivot_root, nr, dir));
        SHOW("chdir", chdir(nr));
        SHOW("pivot_root", (int)syscall(SYS_pivot_root, ".", "old"));
        char cwd[256];
        printf("  cwd: %s\n", getcwd(cwd, sizeof cwd));
        struct stat st;
        SHOW("marker at /", stat("/marker", &st));
        SHOW("old root at /old", stat("/old/proc", &st));
        SHOW("detach old", umount2("/old", MNT_DETACH));
        SHOW("old root gone", stat("/old/proc", &st));
        SHOW("pivot again same root", (int)syscall(SYS_pivot_root, "/", "/old"));
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("parent does not see the child's mount:\n");
    mountinfo(P("c"));
}

static void ipc(void) {
    int q = msgget(0x5157, IPC_CREAT | 0600);
    printf("msgget in parent: %d\n", q >= 0);
    pid_t pid = fork();
    if (pid == 0) {
        errno = 0;
        printf("same ns sees it: %d\n", msgget(0x5157, 0) == q);
        SHOW("unshare ipc", unshare(CLONE_NEWIPC));
        errno = 0;
        int r = msgget(0x5157, 0);
        printf("new ns: %d %s\n", r, strerrorname_np(errno));
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    msgctl(q, IPC_RMID, NULL);
}

static void uts(void) {
    struct utsname u0, u;
    uname(&u0);
    char before[80] = {0};
    readlink("/proc/self/ns/uts", before, sizeof before);
    int pfd[2], qfd[2];
    pipe(pfd);
    pipe(qfd);
    pid_t pid = fork();
    if (pid == 0) {
        SHOW("unshare uts", unshare(CLONE_NEWUTS));
        SHOW("sethostname", sethostname("inner-host", 10));
        SHOW("setdomainname", setdomainname("inner.dom", 9));
        uname(&u);
        printf("  child sees %s %s\n", u.nodename, u.domainname);
        char l[80] = {0};
        readlink("/proc/self/ns/uts", l, sizeof l);
        printf("  ns link changed: %d, format ok: %d\n", strcmp(l, before) != 0,
               strncmp(l, "uts:[", 5) == 0);
        fflush(stdout);
        write(pfd[1], "x", 1);
        char c;
        read(qfd[0], &c, 1);
        _exit(0);
    }
    char c;
    read(pfd[0], &c, 1);
    uname(&u);
    printf("parent unchanged: %d\n", strcmp(u.nodename, u0.nodename) == 0);
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/ns/uts", pid);
    int mine = open("/proc/self/ns/uts", O_RDONLY);
    int theirs = open(p, O_RDONLY);
    SHOW("setns wrong type", setns(theirs, CLONE_NEWIPC));
    SHOW("setns not a ns file", setns(0, 0));
    SHOW("setns bad fd", setns(999, 0));
    SHOW("setns theirs", setns(theirs, CLONE_NEWUTS));
    uname(&u);
    printf("  after setns: %s\n", u.nodename);
    SHOW("setns back", setns(mine, 0));
    uname(&u);
    printf("  back: %d\n", strcmp(u.nodename, u0.nodename) == 0);
    int pidfd = syscall(SYS_pidfd_open, pid, 0);
    SHOW("setns pidfd", setns(pidfd, CLONE_NEWUTS));
    uname(&u);
    printf("  via pidfd: %s\n", u.nodename);
    SHOW("setns pidfd no flags", setns(pidfd, 0));
    setns(mine, 0);
    write(qfd[1], "x", 1);
    int st;
    waitpid(pid, &st, 0);
    SHOW("sethostname too long", sethostname(dir, 65));
    SHOW("unshare bad flag", unshare(0x1));
    SHOW("unshare mount", unshare(CLONE_NEWNS));
    SHOW("unshare ipc", unshare(CLONE_NEWIPC));
}

static void unprivileged(void) {
    pid_t pid = fork();
    if (pid == 0) {
        setgid(65534);
        setuid(65534);
        SHOW("nobody mount", mount("none", P("c"), "tmpfs", 0, NULL));
        SHOW("nobody umount", umount(P("c")));
        SHOW("nobody umount missing", umount(P("nope")));
        SHOW("nobody sethostname", sethostname("x", 1));
        SHOW("nobody unshare uts", unshare(CLONE_NEWUTS));
        SHOW("nobody pivot_root", (int)syscall(SYS_pivot_root, "/", "/"));
        SHOW("nobody chroot", chroot("/"));
        SHOW("nobody reboot", (int)syscall(SYS_reboot, 1, 2, 3, 0));
        SHOW("nobody swapon", (int)syscall(SYS_swapon, "/nonexistent", 0));
        SHOW("nobody swapoff", (int)syscall(SYS_swapoff, "/nonexistent"));
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
}

/* the module calls: EPERM in the sandbox (ENOSYS natively on a kernel
   built without modules, so not part of the differential run) */
static void modules(void) {
    SHOW("init_module", (int)syscall(SYS_init_module, NULL, 0, ""));
    SHOW("finit_module", (int)syscall(SYS_finit_module, -1, "", 0));
    SHOW("delete_module", (int)syscall(SYS_delete_module, "x", 0));
    SHOW("reboot", (int)syscall(SYS_reboot, 0xfee1dead, 672274793, 0x4321FEDC, 0));
    SHOW("swapon", (int)syscall(SYS_swapon, "/nonexistent", 0));
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 2 && strcmp(argv[1], "modules") == 0) {
        modules();
        return 0;
    }
    if (argc < 2) return 2;
    snprintf(dir, sizeof dir, "%s", argv[1]);
    mounts();
    pivot();
    ipc();
    uts();
    unprivileged();
    return 0;
}
