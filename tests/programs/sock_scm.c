/* sock_scm: SCM_RIGHTS passing a pipe, a socket and a file, SCM_CREDENTIALS
 * with SO_PASSCRED, MSG_CTRUNC and MSG_CMSG_CLOEXEC, and malformed control
 * messages. */
#include "sock_common.h"

static long send_fds(int s, const int *fds, int n, const char *data)
{
    char ctl[CMSG_SPACE(sizeof(int) * 8)];
    memset(ctl, 0, sizeof ctl);
    struct iovec iov = {(void *)data, strlen(data)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                        .msg_controllen = CMSG_SPACE(sizeof(int) * n)};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
    memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
    return sendmsg(s, &mh, 0);
}

static int recv_fds(int s, int *fds, int max, size_t ctlsize, int flags, int *mflags)
{
    char ctl[512], data[64];
    struct iovec iov = {data, sizeof data};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                        .msg_controllen = ctlsize};
    long r = recvmsg(s, &mh, flags);
    if (r < 0)
        return -1;
    *mflags = mh.msg_flags;
    int n = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            int k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (int i = 0; i < k && n < max; i++)
                memcpy(&fds[n++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
        }
    }
    return n;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    int sv[2], p[2], inner[2], got[8], mflags;
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pipe(p);
    socketpair(AF_UNIX, SOCK_STREAM, 0, inner);
    char tmpl[] = "/tmp/pyvisor-scmXXXXXX";
    int file = mkstemp(tmpl);
    unlink(tmpl);
    write(file, "file data", 9);
    int fds[3] = {p[1], inner[1], file};
    show("send 3 fds", send_fds(sv[0], fds, 3, "fds"));
    close(p[1]);
    close(inner[1]);
    close(file);
    int n = recv_fds(sv[1], got, 8, 512, MSG_CMSG_CLOEXEC, &mflags);
    showb("received fds", n);
    showb("msg_flags", mflags);
    showb("cloexec on received", (fcntl(got[0], F_GETFD) & FD_CLOEXEC) != 0);
    show("write passed pipe", write(got[0], "via pipe", 8));
    close(got[0]);
    char buf[32] = {0};
    show("read pipe", read(p[0], buf, sizeof buf));
    show("pipe eof once passed end closed", read(p[0], buf, sizeof buf));
    show("write passed socket", write(got[1], "via sock", 8));
    show("read socket", read(inner[0], buf, sizeof buf));
    struct stat st;
    fstat(got[1], &st);
    showb("passed socket is socket", S_ISSOCK(st.st_mode));
    show("pread passed file", pread(got[2], buf, 9, 0));
    printf("file says %.9s\n", buf);
    close(got[1]);
    close(got[2]);
    /* the sender's descriptor closed before the receiver takes it */
    int q[2];
    pipe(q);
    send_fds(sv[0], &q[1], 1, "late");
    close(q[1]);
    n = recv_fds(sv[1], got, 8, 512, 0, &mflags);
    showb("late fd received", n);
    showb("late cloexec off", (fcntl(got[0], F_GETFD) & FD_CLOEXEC) != 0);
    write(got[0], "ok", 2);
    close(got[0]);
    show("late pipe read", read(q[0], buf, sizeof buf));
    show("late pipe eof", read(q[0], buf, sizeof buf));
    close(q[0]);
    /* a control buffer too small: MSG_CTRUNC, the descriptors are closed */
    int r[2];
    pipe(r);
    int two[2] = {r[1], r[1]};
    send_fds(sv[0], two, 2, "trunc");
    close(r[1]);
    n = recv_fds(sv[1], got, 8, CMSG_LEN(sizeof(int)), 0, &mflags);
    showb("truncated count", n);
    showb("MSG_CTRUNC", (mflags & MSG_CTRUNC) != 0);
    for (int i = 0; i < n; i++)
        close(got[i]);
    show("dropped write end gone: eof", read(r[0], buf, sizeof buf));
    close(r[0]);
    /* no control buffer at all */
    pipe(r);
    send_fds(sv[0], &r[1], 1, "none");
    close(r[1]);
    n = recv_fds(sv[1], got, 8, 0, 0, &mflags);
    showb("no buffer count", n);
    showb("no buffer MSG_CTRUNC", (mflags & MSG_CTRUNC) != 0);
    show("no buffer eof", read(r[0], buf, sizeof buf));
    close(r[0]);
    /* credentials */
    int on = 1;
    setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
    write(sv[0], "cred", 4);
    char ctl[256], data[16];
    struct iovec iov = {data, sizeof data};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                        .msg_controllen = sizeof ctl};
    show("recvmsg with SO_PASSCRED", recvmsg(sv[1], &mh, 0));
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    showb("cmsg is SCM_CREDENTIALS", cm && cm->cmsg_type == SCM_CREDENTIALS);
    struct ucred uc;
    memcpy(&uc, CMSG_DATA(cm), sizeof uc);
    printf("cred pid ok %d uid %d gid %d len %d\n", uc.pid == getpid(), (int)uc.uid,
           (int)uc.gid, (int)cm->cmsg_len);
    /* explicit SCM_CREDENTIALS */
    struct msghdr sm = {0};
    char sctl[CMSG_SPACE(sizeof(struct ucred))] = {0};
    struct iovec siov = {"c2", 2};
    sm.msg_iov = &siov;
    sm.msg_iovlen = 1;
    sm.msg_control = sctl;
    sm.msg_controllen = sizeof sctl;
    cm = CMSG_FIRSTHDR(&sm);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_CREDENTIALS;
    cm->cmsg_len = CMSG_LEN(sizeof(struct ucred));
    struct ucred mine = {getpid(), getuid(), getgid()};
    memcpy(CMSG_DATA(cm), &mine, sizeof mine);
    show("sendmsg SCM_CREDENTIALS", sendmsg(sv[0], &sm, 0));
    mh.msg_controllen = sizeof ctl;
    show("recv explicit creds", recvmsg(sv[1], &mh, 0));
    /* malformed control messages */
    cm = CMSG_FIRSTHDR(&sm);
    cm->cmsg_len = 8;
    show("cmsg_len too small", sendmsg(sv[0], &sm, 0));
    cm->cmsg_len = 4096;
    show("cmsg_len past buffer", sendmsg(sv[0], &sm, 0));
    cm->cmsg_len = CMSG_LEN(sizeof(struct ucred)) - 4;
    show("ucred wrong length", sendmsg(sv[0], &sm, 0));
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    cm->cmsg_type = 99;
    show("unknown SOL_SOCKET type", sendmsg(sv[0], &sm, 0));
    cm->cmsg_level = IPPROTO_IP;
    show("other level skipped", sendmsg(sv[0], &sm, 0));
    int bad = 999;
    show("SCM_RIGHTS bad fd", send_fds(sv[0], &bad, 1, "bad"));
    int t = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in lo = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(t, (void *)&lo, sizeof lo);
    socklen_t ll = sizeof lo;
    getsockname(t, (void *)&lo, &ll);
    connect(t, (void *)&lo, sizeof lo);
    show("SCM_RIGHTS over UDP", send_fds(t, &sv[0], 1, "x"));
    sm.msg_controllen = (size_t)1 << 40;
    show("controllen huge", sendmsg(sv[0], &sm, 0));
    sm.msg_controllen = sizeof sctl;
    sm.msg_iovlen = 2000;
    show("iovlen huge", sendmsg(sv[0], &sm, 0));
    show("sendmsg bad msghdr", sendmsg(sv[0], (void *)8, 0));
    show("sendmsg not a socket", sendmsg(p[0], &sm, 0));
    close(t);
    /* a socket passed over itself, then closed: no hang, no leak visible */
    send_fds(sv[0], &sv[1], 1, "self");
    close(sv[0]);
    close(sv[1]);
    show("done", 0);
    return 0;
}
