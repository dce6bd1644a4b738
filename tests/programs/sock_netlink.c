/* AF_NETLINK / NETLINK_ROUTE, differentially: socket types and protocols,
 * bind and port ids, getsockname/getpeername, dumps (NLM_F_MULTI, sequence
 * and port fields, NLMSG_DONE), acks and NLMSG_ERROR, changes refused
 * without CAP_NET_ADMIN, and getifaddrs. Run natively in a network
 * namespace whose lo is up (the sandbox's --network=none view).
 * Prints results and errno names, never pids. */
#include "sock_common.h"
#include <ifaddrs.h>
#include <linux/capability.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/syscall.h>

static int nl_open(void)
{
    return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
}

static unsigned my_port(int fd)
{
    struct sockaddr_nl sa;
    socklen_t len = sizeof sa;
    memset(&sa, 0, sizeof sa);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    return sa.nl_pid;
}

/* Send one request of `type` with `flags` and a payload. */
static long nl_send(int fd, int type, int flags, unsigned seq, const void *body, size_t n)
{
    char buf[256];
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    memset(buf, 0, sizeof buf);
    h->nlmsg_len = NLMSG_LENGTH(n);
    h->nlmsg_type = type;
    h->nlmsg_flags = flags;
    h->nlmsg_seq = seq;
    memcpy(NLMSG_DATA(h), body, n);
    struct sockaddr_nl to = {.nl_family = AF_NETLINK};
    return sendto(fd, buf, h->nlmsg_len, 0, (struct sockaddr *)&to, sizeof to);
}

/* Read replies until DONE or an error/ack; print a summary line. */
static void nl_summary(const char *what, int fd, unsigned seq)
{
    static char buf[65536];
    int msgs = 0, multi = 0, badseq = 0, badpid = 0, done = 0, err = 1, reads = 0;
    unsigned port = my_port(fd);
    while (!done) {
        struct sockaddr_nl from;
        struct iovec iov = {buf, sizeof buf};
        struct msghdr m = {.msg_name = &from, .msg_namelen = sizeof from,
                           .msg_iov = &iov, .msg_iovlen = 1};
        ssize_t n = recvmsg(fd, &m, 0);
        if (n < 0) {
            show(what, n);
            return;
        }
        reads++;
        if (from.nl_pid != 0 || m.msg_namelen != sizeof from)
            badpid++;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_seq != seq)
                badseq++;
            if (h->nlmsg_pid != port)
                badpid++;
            if (h->nlmsg_type == NLMSG_DONE) {
                done = 1;
                err = *(int *)NLMSG_DATA(h);
                break;
            }
            if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *e = NLMSG_DATA(h);
                done = 1;
                err = e->error;
                printf("%-40s error %s len %u capped %d\n", what,
                       e->error ? strerrorname_np(-e->error) : "0", h->nlmsg_len,
                       !!(h->nlmsg_flags & NLM_F_CAPPED));
                break;
            }
            msgs++;
            multi += !!(h->nlmsg_flags & NLM_F_MULTI);
        }
        if (reads > 50)
            break;
    }
    printf("%-40s msgs>0 %d all-multi %d badseq %d badpid %d done %d\n", what, msgs > 0,
           msgs == multi, badseq, badpid, err);
    fflush(stdout);
}

static void dump(const char *what, int type, unsigned char family)
{
    int fd = nl_open();
    struct ifinfomsg ifi = {.ifi_family = family};
    nl_send(fd, type, NLM_F_REQUEST | NLM_F_DUMP, 77, &ifi, sizeof ifi);
    nl_summary(what, fd, 77);
    close(fd);
}

static void drop_caps(void)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof d);
    show("capset none", syscall(SYS_capset, &h, d));
}

int main(void)
{
    show("socket stream", socket(AF_NETLINK, SOCK_STREAM, NETLINK_ROUTE));
    show("socket seqpacket", socket(AF_NETLINK, SOCK_SEQPACKET, NETLINK_ROUTE));
    show("socket protocol 1 (unused)", socket(AF_NETLINK, SOCK_RAW, 1));
    show("socket protocol 32", socket(AF_NETLINK, SOCK_RAW, 32));
    show("socket protocol -1", socket(AF_NETLINK, SOCK_RAW, -1));
    show("socketpair netlink", socketpair(AF_NETLINK, SOCK_RAW, 0, (int[2]){0, 0}));
    int dg = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_ROUTE);
    show("socket dgram", dg < 0 ? dg : 0);
    close(dg);

    int fd = nl_open();
    struct sockaddr_nl sa;
    socklen_t len = sizeof sa;
    memset(&sa, 0, sizeof sa);
    show("getsockname unbound", getsockname(fd, (struct sockaddr *)&sa, &len));
    showb("  len", len);
    showb("  pid", sa.nl_pid);
    struct sockaddr_nl me = {.nl_family = AF_NETLINK};
    show("bind short", bind(fd, (struct sockaddr *)&me, 8));
    me.nl_family = AF_INET;
    show("bind wrong family", bind(fd, (struct sockaddr *)&me, sizeof me));
    me.nl_family = AF_NETLINK;
    show("bind pid 0", bind(fd, (struct sockaddr *)&me, sizeof me));
    unsigned port = my_port(fd);
    showb("  port is getpid", port == (unsigned)getpid());
    show("bind again same", bind(fd, (struct sockaddr *)&(struct sockaddr_nl){
        .nl_family = AF_NETLINK, .nl_pid = port}, sizeof me));
    show("bind again other", bind(fd, (struct sockaddr *)&(struct sockaddr_nl){
        .nl_family = AF_NETLINK, .nl_pid = port + 1}, sizeof me));
    int fd2 = nl_open();
    show("bind taken pid", bind(fd2, (struct sockaddr *)&(struct sockaddr_nl){
        .nl_family = AF_NETLINK, .nl_pid = port}, sizeof me));
    show("bind pid 0 second", bind(fd2, (struct sockaddr *)&me, sizeof me));
    showb("  second port differs", my_port(fd2) != port);
    showb("  second port negative", (int)my_port(fd2) < 0);
    close(fd2);
    len = sizeof sa;
    show("getpeername", getpeername(fd, (struct sockaddr *)&sa, &len));
    showb("  len", len);
    showb("  pid", sa.nl_pid);
    show("listen", listen(fd, 1));
    show("shutdown", shutdown(fd, SHUT_RDWR));
    show("connect pid 1", connect(fd, (struct sockaddr *)&(struct sockaddr_nl){
        .nl_family = AF_NETLINK, .nl_pid = 1}, sizeof me));
    show("connect kernel", connect(fd, (struct sockaddr *)&me, sizeof me));
    int one = 1;
    show("setsockopt EXT_ACK", setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one));
    show("setsockopt bad level", setsockopt(fd, SOL_IP, 1, &one, sizeof one));
    show("setsockopt short", setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, 2));
    showb("getsockopt EXT_ACK", int_opt(fd, SOL_NETLINK, NETLINK_EXT_ACK));
    showb("getsockopt bad", int_opt(fd, SOL_NETLINK, 99));

    /* A request to another port. */
    struct sockaddr_nl other = {.nl_family = AF_NETLINK, .nl_pid = 12345};
    char junk[NLMSG_LENGTH(4)] = {0};
    show("sendto user port", sendto(fd, junk, sizeof junk, 0, (struct sockaddr *)&other,
                                    sizeof other));
    show("sendto short addr", sendto(fd, junk, sizeof junk, 0, (struct sockaddr *)&other, 4));
    /* A truncated header is dropped silently: nothing to read. */
    show("send short message", send(fd, junk, 8, 0));
    show("recv after short", recv(fd, junk, sizeof junk, MSG_DONTWAIT));
    close(fd);

    dump("dump links", RTM_GETLINK, AF_UNSPEC);
    dump("dump links v6", RTM_GETLINK, AF_INET6);
    dump("dump addrs", RTM_GETADDR, AF_UNSPEC);
    dump("dump addrs v4", RTM_GETADDR, AF_INET);
    dump("dump routes", RTM_GETROUTE, AF_UNSPEC);
    dump("dump neigh", RTM_GETNEIGH, AF_UNSPEC);

    fd = nl_open();
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = 1};
    nl_send(fd, RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, 5, &ifi, sizeof ifi);
    nl_summary("get link 1 with ack", fd, 5);
    ifi.ifi_index = 999;
    nl_send(fd, RTM_GETLINK, NLM_F_REQUEST, 6, &ifi, sizeof ifi);
    nl_summary("get link 999", fd, 6);
    nl_send(fd, NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, 7, &ifi, sizeof ifi);
    nl_summary("noop with ack", fd, 7);
    nl_send(fd, 200, NLM_F_REQUEST, 8, &ifi, sizeof ifi);
    nl_summary("type past RTM_MAX", fd, 8);
    show("setsockopt CAP_ACK", setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one));
    ifi.ifi_index = 999;
    nl_send(fd, RTM_GETLINK, NLM_F_REQUEST, 9, &ifi, sizeof ifi);
    nl_summary("get link 999 capped", fd, 9);
    unsigned char fam = AF_INET;
    nl_send(fd, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP | NLM_F_ACK, 10, &fam, 1);
    nl_summary("dump with rtgenmsg only", fd, 10);
    close(fd);

    struct ifaddrs *ifa;
    show("getifaddrs", getifaddrs(&ifa));
    for (struct ifaddrs *p = ifa; p; p = p->ifa_next) {
        char host[64] = "-";
        int fam2 = p->ifa_addr ? p->ifa_addr->sa_family : -1;
        if (fam2 == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)p->ifa_addr)->sin_addr, host, sizeof host);
        else if (fam2 == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)p->ifa_addr)->sin6_addr, host,
                      sizeof host);
        printf("  ifaddr %s family %d %s flags %#x\n", p->ifa_name, fam2, host, p->ifa_flags);
    }
    freeifaddrs(ifa);
    showb("if_nametoindex lo", if_nametoindex("lo"));
    char name[IF_NAMESIZE] = "";
    printf("if_indextoname 1 %s\n", if_indextoname(1, name) ? name : strerrorname_np(errno));
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    show("SIOCGIFFLAGS lo", ioctl(s, SIOCGIFFLAGS, &ifr));
    showb("  flags", ifr.ifr_flags);
    show("SIOCGIFMTU lo", ioctl(s, SIOCGIFMTU, &ifr));
    showb("  mtu", ifr.ifr_mtu);
    show("SIOCGIFNETMASK lo", ioctl(s, SIOCGIFNETMASK, &ifr));
    showb("  mask", ((struct sockaddr_in *)&ifr.ifr_netmask)->sin_addr.s_addr);
    show("SIOCGIFHWADDR lo", ioctl(s, SIOCGIFHWADDR, &ifr));
    showb("  hw family", ifr.ifr_hwaddr.sa_family);
    strcpy(ifr.ifr_name, "nope0");
    show("SIOCGIFFLAGS nope0", ioctl(s, SIOCGIFFLAGS, &ifr));
    struct ifconf ifc = {.ifc_len = 0, .ifc_buf = NULL};
    show("SIOCGIFCONF size", ioctl(s, SIOCGIFCONF, &ifc));
    showb("  len", ifc.ifc_len);
    close(s);

    /* Changes need CAP_NET_ADMIN. */
    drop_caps();
    fd = nl_open();
    struct ifaddrmsg ia = {.ifa_family = AF_INET, .ifa_prefixlen = 24, .ifa_index = 1};
    nl_send(fd, RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE, 11, &ia, sizeof ia);
    nl_summary("new addr without CAP_NET_ADMIN", fd, 11);
    nl_send(fd, RTM_DELROUTE, NLM_F_REQUEST, 12, &ia, sizeof ia);
    nl_summary("del route without CAP_NET_ADMIN", fd, 12);
    s = socket(AF_INET, SOCK_DGRAM, 0);
    strcpy(ifr.ifr_name, "lo");
    show("SIOCSIFMTU without CAP_NET_ADMIN", ioctl(s, SIOCSIFMTU, &ifr));
    return 0;
}
