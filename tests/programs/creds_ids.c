/* Credentials and capabilities, run as root: the set*id transitions with
 * their capability side effects, capget/capset, prctl's capability options,
 * fs ids, signal permission, and execve's transitions (plain and set-user-ID).
 *
 * Usage: creds_ids DIR   (DIR: an empty directory writable by root)
 *        creds_ids show  (internal: print ids, caps and AT_SECURE, for exec)
 * Every step prints its result and errno; the output must be the same natively
 * and in the sandbox. Each scenario runs in a forked child so it starts from
 * root's credentials. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_IS_SET 1
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_LOWER 3
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#define SECBIT_KEEP_CAPS (1 << 4)
#define SECBIT_KEEP_CAPS_LOCKED (1 << 5)

static const char *dir;

static void report(const char *what, long ret) {
    printf("%s: %ld %s\n", what, ret, ret < 0 ? strerrorname_np(errno) : "-");
    fflush(stdout);
}

static int capget_raw(uint32_t version, int pid, struct __user_cap_data_struct *d) {
    struct __user_cap_header_struct h = {version, pid};
    return syscall(SYS_capget, &h, d);
}

static int capset_raw(uint32_t version, uint64_t eff, uint64_t prm, uint64_t inh) {
    struct __user_cap_header_struct h = {version, 0};
    struct __user_cap_data_struct d[2] = {
        {(uint32_t)eff, (uint32_t)prm, (uint32_t)inh},
        {(uint32_t)(eff >> 32), (uint32_t)(prm >> 32), (uint32_t)(inh >> 32)},
    };
    return syscall(SYS_capset, &h, d);
}

static void caps(uint64_t *eff, uint64_t *prm, uint64_t *inh) {
    struct __user_cap_data_struct d[2];
    capget_raw(_LINUX_CAPABILITY_VERSION_3, 0, d);
    *eff = d[0].effective | (uint64_t)d[1].effective << 32;
    *prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
    *inh = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
}

static void show(const char *tag) {
    uid_t r, e, s;
    gid_t rg, eg, sg;
    uint64_t eff, prm, inh;
    getresuid(&r, &e, &s);
    getresgid(&rg, &eg, &sg);
    caps(&eff, &prm, &inh);
    printf("%s: uid %u %u %u fsuid %d gid %u %u %u eff %llx prm %llx inh %llx amb-raw %d\n",
           tag, r, e, s, setfsuid(-1), rg, eg, sg, (unsigned long long)eff,
           (unsigned long long)prm, (unsigned long long)inh,
           (int)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_RAW, 0, 0));
    fflush(stdout);
}

static void in_child(const char *name, void (*fn)(void)) {
    printf("== %s\n", name);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        fn();
        fflush(stdout);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("-- status %d\n", st);
}

static void version_probe(void) {
    struct __user_cap_header_struct h = {0x12345678, 0};
    struct __user_cap_data_struct d[2];
    errno = 0;
    report("capget bad version", syscall(SYS_capget, &h, d));
    printf("version written back: %#x\n", h.version);
    h.version = 0x12345678;
    report("capget bad version, no data", syscall(SYS_capget, &h, NULL));
    report("capset bad version", capset_raw(0x12345678, 0, 0, 0));
    report("capget v1", capget_raw(_LINUX_CAPABILITY_VERSION_1, 0, d));
    printf("v1 eff %x\n", d[0].effective);
    report("capget pid -1", capget_raw(_LINUX_CAPABILITY_VERSION_3, -1, d));
    report("capget no such pid", capget_raw(_LINUX_CAPABILITY_VERSION_3, 99999, d));
    report("capset other pid", syscall(SYS_capset,
           &(struct __user_cap_header_struct){_LINUX_CAPABILITY_VERSION_3, 1}, d));
    report("capbset read chown", prctl(PR_CAPBSET_READ, CAP_CHOWN, 0, 0, 0));
    report("capbset read 99", prctl(PR_CAPBSET_READ, 99, 0, 0, 0));
}

static void bounding_and_inheritable(void) {
    uint64_t eff, prm, inh;
    report("capbset drop sys_boot", prctl(PR_CAPBSET_DROP, CAP_SYS_BOOT, 0, 0, 0));
    report("capbset read sys_boot", prctl(PR_CAPBSET_READ, CAP_SYS_BOOT, 0, 0, 0));
    caps(&eff, &prm, &inh);
    report("capset inh outside bounding",
           capset_raw(_LINUX_CAPABILITY_VERSION_3, eff, prm, 1ULL << CAP_SYS_BOOT));
    report("capset inh net_raw",
           capset_raw(_LINUX_CAPABILITY_VERSION_3, eff, prm, 1ULL << CAP_NET_RAW));
    report("capset eff beyond prm", capset_raw(_LINUX_CAPABILITY_VERSION_3,
           eff | (1ULL << CAP_SYS_BOOT), prm & ~(1ULL << CAP_SYS_BOOT), 1ULL << CAP_NET_RAW));
    report("ambient raise net_raw", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0));
    report("ambient is_set net_raw", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_RAW, 0, 0));
    report("ambient raise chown", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_CHOWN, 0, 0));
    report("ambient raise 99", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, 99, 0, 0));
    report("ambient bad op", prctl(PR_CAP_AMBIENT, 9, CAP_CHOWN, 0, 0));
    /* Dropping the cap from permitted drops it from ambient too. */
    caps(&eff, &prm, &inh);
    report("capset drop net_raw", capset_raw(_LINUX_CAPABILITY_VERSION_3,
           eff & ~(1ULL << CAP_NET_RAW), prm & ~(1ULL << CAP_NET_RAW), inh));
    report("ambient is_set after drop",
           prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_RAW, 0, 0));
    report("capset raise back", capset_raw(_LINUX_CAPABILITY_VERSION_3, eff, prm, inh));
    show("after");
}

static void setuid_family(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/secret", dir);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    close(fd);
    report("setgroups", setgroups(2, (gid_t[]){100, 65534}));
    report("setresgid", setresgid(65534, 65534, 65534));
    report("setresuid keep saved 0", setresuid(65534, 65534, 0));
    show("nobody with saved root");
    report("open root 0600 file", open(path, O_RDONLY));
    report("setgroups unprivileged", setgroups(0, NULL));
    report("setuid back to saved 0", setuid(0));
    show("back");
    report("open root 0600 file again", open(path, O_RDONLY) >= 0);
    report("setreuid 1000 1000", setreuid(1000, 1000));
    show("setreuid");
    report("setuid 0 after all dropped", setuid(0));
    report("setreuid -1 2000", setreuid(-1, 2000));
    report("setresuid -1 -1 -1", setresuid(-1, -1, -1));
    report("setgid 0 unprivileged", setgid(0));
    report("setuid -1", setuid(-1));
}

static void fsuid_and_files(void) {
    char path[4096];
    struct stat st;
    memset(&st, 0, sizeof st);
    snprintf(path, sizeof path, "%s/open", dir);
    mkdir(path, 0777);
    chmod(path, 01777);
    report("setfsuid 1000 (old)", setfsuid(1000));
    report("setfsgid 1001 (old)", setfsgid(1001));
    show("fs ids");
    snprintf(path, sizeof path, "%s/open/byfsuid", dir);
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    report("create as fsuid 1000", fd >= 0);
    close(fd);
    report("stat", stat(path, &st));
    printf("owner %u %u\n", st.st_uid, st.st_gid);
    snprintf(path, sizeof path, "%s/secret", dir);
    report("open root 0600 as fsuid 1000", open(path, O_RDONLY));
    report("setfsuid 0 (old)", setfsuid(0));
    report("open root 0600 as fsuid 0", open(path, O_RDONLY) >= 0);
    report("setfsuid -1 (old)", setfsuid(-1));
}

static void dac_caps(void) {
    char path[4096];
    uint64_t eff, prm, inh;
    snprintf(path, sizeof path, "%s/users", dir);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    close(fd);
    chown(path, 1000, 1000);
    caps(&eff, &prm, &inh);
    report("drop dac_override",
           capset_raw(_LINUX_CAPABILITY_VERSION_3, eff & ~(1ULL << CAP_DAC_OVERRIDE), prm, inh));
    report("read other user's 0600", open(path, O_RDONLY) >= 0);
    report("write other user's 0600", open(path, O_WRONLY));
    report("drop dac_read_search", capset_raw(_LINUX_CAPABILITY_VERSION_3,
           eff & ~(1ULL << CAP_DAC_OVERRIDE | 1ULL << CAP_DAC_READ_SEARCH), prm, inh));
    report("read other user's 0600 again", open(path, O_RDONLY));
    report("chown without cap_chown? (has it)", chown(path, 1000, 1000));
    report("drop chown", capset_raw(_LINUX_CAPABILITY_VERSION_3, 0, prm, inh));
    report("chown other user's file", chown(path, 0, 0));
    report("chmod other user's file", chmod(path, 0644));
    report("restore effective", capset_raw(_LINUX_CAPABILITY_VERSION_3, eff, prm, inh));
    report("chmod with fowner", chmod(path, 0644));
}

static void keepcaps(void) {
    uint64_t eff, prm, inh;
    report("get keepcaps", prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
    report("set keepcaps 2", prctl(PR_SET_KEEPCAPS, 2, 0, 0, 0));
    report("set keepcaps", prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
    report("securebits", prctl(PR_GET_SECUREBITS, 0, 0, 0, 0));
    report("setresuid 1000 all", setresuid(1000, 1000, 1000));
    show("kept");
    caps(&eff, &prm, &inh);
    report("capset raise setuid", capset_raw(_LINUX_CAPABILITY_VERSION_3,
           1ULL << CAP_SETUID, prm, inh));
    report("setuid 0 with cap_setuid", setuid(0));
    show("root again");
}

static void securebits(void) {
    report("set securebits locked keepcaps",
           prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS | SECBIT_KEEP_CAPS_LOCKED, 0, 0, 0));
    report("securebits", prctl(PR_GET_SECUREBITS, 0, 0, 0, 0));
    report("clear locked keepcaps", prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0));
    report("set bad securebits", prctl(PR_SET_SECUREBITS, 1 << 12, 0, 0, 0));
}

static void signals(void) {
    int ready[2];
    char c;
    if (pipe(ready) != 0)
        return;
    pid_t a = fork();
    if (a == 0) {
        setresuid(1000, 1000, 1000);
        if (write(ready[1], "x", 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    if (read(ready[0], &c, 1) != 1)
        return;
    pid_t b = fork();
    if (b == 0) {
        setresuid(2000, 2000, 2000);
        report("kill other user 0", kill(a, 0));
        report("kill other user TERM", kill(a, SIGTERM));
        report("kill other user CONT (same session)", kill(a, SIGCONT));
        report("kill own uid", kill(getpid(), 0));
        _exit(0);
    }
    int st;
    waitpid(b, &st, 0);
    kill(a, SIGKILL);
    waitpid(a, &st, 0);
    printf("a killed by %d\n", WTERMSIG(st));
}

static void exec_transitions(void) {
    char path[4096];
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n < 0 ? 0 : n] = 0;
    /* A set-user-ID copy of this program, owned by 1000. */
    snprintf(path, sizeof path, "%s/suid-show", dir);
    int in = open(self, O_RDONLY), out = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0755);
    char buf[65536];
    ssize_t r;
    while ((r = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, r) != r) break;
    close(in);
    close(out);
    report("chown 1000", chown(path, 1000, 1000));
    report("chmod 4755", chmod(path, 04755));
    pid_t pid = fork();
    if (pid == 0) {
        setresgid(2000, 2000, 2000);
        setresuid(2000, 2000, 2000);
        execl(path, path, "show", (char *)NULL);
        report("exec suid", -1);
        _exit(1);
    }
    int st;
    waitpid(pid, &st, 0);
    struct stat s;
    report("chown again clears suid", chown(path, 1000, 1000));
    stat(path, &s);
    printf("mode %o\n", s.st_mode & 07777);
    /* Root with keepcaps after exec: caps recomputed from ambient only. */
    pid = fork();
    if (pid == 0) {
        uint64_t eff, prm, inh;
        prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0);
        setresuid(1000, 1000, 1000);
        caps(&eff, &prm, &inh);
        report("capset inh after setresuid",
               capset_raw(_LINUX_CAPABILITY_VERSION_3, 0, prm, 1ULL << CAP_NET_RAW));
        report("ambient raise as 1000",
               prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0));
        execl(self, self, "show", (char *)NULL);
        _exit(1);
    }
    waitpid(pid, &st, 0);
    pid = fork();
    if (pid == 0) {
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        chmod(path, 04755);
        setresuid(2000, 2000, 2000);
        execl(path, path, "show", (char *)NULL);
        _exit(1);
    }
    waitpid(pid, &st, 0);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "show") == 0) {
        show("exec");
        printf("AT_SECURE %lu\n", getauxval(AT_SECURE));
        return 0;
    }
    if (argc < 2)
        return 2;
    dir = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);
    show("start");
    in_child("version probe", version_probe);
    in_child("bounding and inheritable", bounding_and_inheritable);
    in_child("setuid family", setuid_family);
    in_child("fsuid and files", fsuid_and_files);
    in_child("dac capabilities", dac_caps);
    in_child("keepcaps", keepcaps);
    in_child("securebits", securebits);
    in_child("signals", signals);
    in_child("exec transitions", exec_transitions);
    return 0;
}
