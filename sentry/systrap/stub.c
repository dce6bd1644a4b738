/*
 * pyvisor systrap stub and its Sentry-side helpers.
 *
 * Facts about the kernel APIs this file leans on (and why it is shaped so):
 *
 * - A seccomp filter returning SECCOMP_RET_TRAP makes the kernel skip the
 *   syscall and deliver SIGSYS to the thread.  In the signal frame RAX holds the
 *   syscall number again (the kernel rolls the syscall back), RIP points after
 *   the `syscall` instruction, so writing the result into RAX and returning from
 *   the handler is a complete emulated syscall.
 * - seccomp_data.instruction_pointer is the address *after* the syscall
 *   instruction.  The filter lets through only syscalls issued by the single
 *   `syscall` instruction in stub_syscall6, and from there only an allowlist
 *   with argument checks (see sentry/systrap/bpf.py).
 * - Code placed in the "pyvisor_stub" section is copied byte for byte to
 *   STUB_CODE_ADDR in every stub process, whose address space holds nothing but
 *   the stub region.  So that code must be position independent and self-
 *   contained: static functions only (direct, PC-relative calls), no libc, no
 *   global data (fixed addresses from stub.h instead), no TLS and no stack
 *   protector (the application owns %fs).  tests/test_stub_code.py disassembles
 *   the section and fails on any reference that leaves it.
 * - Filters and signal dispositions are inherited across clone; PDEATHSIG is
 *   not (it is reset in a child), so every stub sets it itself and then checks
 *   that its parent is still the Sentry.
 * - The futex words live in a MAP_SHARED memfd mapping in both processes, so
 *   shared (not FUTEX_PRIVATE) operations are required.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>

#include "stub.h"

#define STUB __attribute__((section("pyvisor_stub"), used, noinline))
#define STUB_INLINE __attribute__((section("pyvisor_stub"), always_inline)) static inline

/* The one syscall instruction the filter trusts, the signal restorer that goes
 * through it, and a second syscall instruction that the filter traps: a new
 * stub uses it to hand itself to the Sentry for its first registers. */
__asm__(
    ".pushsection pyvisor_stub,\"ax\",@progbits\n"
    ".p2align 4\n"
    ".globl stub_syscall6\n"
    ".hidden stub_syscall6\n"
    ".type stub_syscall6,@function\n"
    "stub_syscall6:\n"
    "  mov %rdi, %rax\n"
    "  mov %rsi, %rdi\n"
    "  mov %rdx, %rsi\n"
    "  mov %rcx, %rdx\n"
    "  mov %r8, %r10\n"
    "  mov %r9, %r8\n"
    "  mov 8(%rsp), %r9\n"
    ".globl stub_syscall_insn\n"
    ".hidden stub_syscall_insn\n"
    "stub_syscall_insn:\n"
    "  syscall\n"
    "  ret\n"
    ".globl stub_restorer\n"
    ".hidden stub_restorer\n"
    "stub_restorer:\n"
    "  mov $15, %eax\n"
    "  jmp stub_syscall_insn\n"
    ".globl stub_trap\n"
    ".hidden stub_trap\n"
    "stub_trap:\n"
    "  mov $39, %eax\n"
    "  syscall\n"
    "  ud2\n"
    ".popsection\n");

extern long stub_syscall6(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
    __attribute__((visibility("hidden")));
extern char stub_syscall_insn[] __attribute__((visibility("hidden")));
extern char stub_restorer[] __attribute__((visibility("hidden")));
extern void stub_trap(void) __attribute__((visibility("hidden")));
extern char __start_pyvisor_stub[] __attribute__((visibility("hidden")));
extern char __stop_pyvisor_stub[] __attribute__((visibility("hidden")));

#define S6(nr, a, b, c, d, e, f) \
    stub_syscall6((nr), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))
#define S0(nr) S6(nr, 0, 0, 0, 0, 0, 0)
#define S1(nr, a) S6(nr, a, 0, 0, 0, 0, 0)
#define S2(nr, a, b) S6(nr, a, b, 0, 0, 0, 0)
#define S3(nr, a, b, c) S6(nr, a, b, c, 0, 0, 0)
#define S4(nr, a, b, c, d) S6(nr, a, b, c, d, 0, 0)

#define PR_SET_PDEATHSIG_ 1
#define PR_SET_NO_NEW_PRIVS_ 38
#define PR_CAPBSET_DROP_ 24
#define K_SA_SIGINFO 0x4
#define K_SA_ONSTACK 0x08000000
#define K_SA_RESTORER 0x04000000
#define K_MAP_SHARED 0x01
#define K_MAP_PRIVATE 0x02
#define K_MAP_FIXED 0x10
#define K_MAP_ANONYMOUS 0x20
#define K_PROT_RW 0x3
#define K_PROT_RX 0x5
#define K_ARCH_SET_FS 0x1002
#define K_ARCH_SET_GS 0x1001
#define K_CLONE_PARENT 0x00008000
#define K_CLONE_PIDFD 0x00001000
#define K_SIGCHLD 17

#define SIGBIT(s) (1ULL << ((s) - 1))
/* The signals a stub thread leaves unblocked: the trap, the faults, and the
 * Sentry's kick (STUB_KICK_SIGNAL: interrupt the application so the Sentry
 * can deliver a signal to a thread that is running application code). */
#define FAULT_SIGNALS \
    (SIGBIT(SIGSYS) | SIGBIT(SIGSEGV) | SIGBIT(SIGBUS) | SIGBIT(SIGFPE) | SIGBIT(SIGILL) | \
     SIGBIT(SIGTRAP) | SIGBIT(STUB_KICK_SIGNAL))

/* ~10 us of TSC: the Sentry's Python needs a few us per syscall, and a stub
 * that spins less than that always ends up paying a futex wake-up. */
/* How long a side on the same CPU as its peer yields before it sleeps: about
 * one slow Sentry syscall (~40 us of TSC at ~2.5 GHz). */
#define YIELD_CYCLES 100000ULL
#define SPIN_MIN 25000ULL
#define SPIN_MAX 200000ULL
#define SPIN_START 60000ULL

STUB_INLINE uint32_t load32(uint32_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
STUB_INLINE void store32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
STUB_INLINE uint64_t rdtsc(void) {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}
STUB_INLINE void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }

/* Publish a new state and wake the other side if it went to sleep on it. */
STUB_INLINE void stub_post(uint32_t *word, uint32_t *peer_sleeping, uint32_t v) {
    store32(word, v);
    if (load32(peer_sleeping))
        S6(SYS_futex, word, FUTEX_WAKE_BITSET, 1, 0, 0, FUTEX_BIT_SENTRY);
}

STUB_INLINE int sentry_answered(uint32_t s) {
    return s == SLOT_OPS || s == SLOT_REPLY || s == SLOT_REPLY_OPS || s == SLOT_RESYNC;
}

/* Wait for the Sentry's answer.  Its thread on another CPU (spin_ok): spin for
 * an adaptive number of TSC cycles.  On this CPU (sentry/placement.py) the
 * answer cannot come while this thread holds the CPU, so yield it for a while
 * instead: a runnable Sentry thread runs at once, without the futex wake-up
 * and sleep (a same-CPU hand-off ~1 us cheaper).  Then sleep on the futex.
 * Returns SLOT_OPS, SLOT_REPLY or SLOT_REPLY_OPS. */
STUB static uint32_t stub_wait_sentry(struct stub_slot *slot) {
    uint32_t s;
    if (!load32(&slot->spin_ok)) {
        uint64_t start = rdtsc();
        do {
            S0(SYS_sched_yield);
            s = load32(&slot->state);
            if (sentry_answered(s))
                return s;
        } while (rdtsc() - start < YIELD_CYCLES);
    } else {
        uint64_t budget = slot->spin_budget;
        if (budget < SPIN_MIN || budget > SPIN_MAX)
            budget = SPIN_START;
        uint64_t start = rdtsc();
        for (;;) {
            s = load32(&slot->state);
            if (sentry_answered(s)) {
                budget += budget / 4;
                slot->spin_budget = budget > SPIN_MAX ? SPIN_MAX : budget;
                return s;
            }
            if (rdtsc() - start > budget)
                break;
            cpu_relax();
        }
        budget /= 2;
        slot->spin_budget = budget < SPIN_MIN ? SPIN_MIN : budget;
    }
    for (;;) {
        store32(&slot->stub_sleeping, 1);
        s = load32(&slot->state);
        if (!sentry_answered(s))
            S6(SYS_futex, &slot->state, FUTEX_WAIT_BITSET, s, 0, 0, FUTEX_BIT_STUB);
        store32(&slot->stub_sleeping, 0);
        s = load32(&slot->state);
        if (sentry_answered(s))
            return s;
    }
}

#define FP_XSTATE_MAGIC1 0x46505853U
#define FXSAVE_SIZE 512

/* The size of the FPU area the kernel put in this signal frame: the xsave
 * size from its software-reserved bytes, or the legacy fxsave size. */
STUB_INLINE uint64_t fp_area_size(volatile uint8_t *fp) {
    uint32_t magic = *(volatile uint32_t *)(fp + 464);
    uint32_t xsize = *(volatile uint32_t *)(fp + 464 + 16);
    if (magic == FP_XSTATE_MAGIC1 && xsize >= FXSAVE_SIZE && xsize <= STUB_SLOT_FP_MAX)
        return xsize;
    return FXSAVE_SIZE;
}

STUB_INLINE volatile uint8_t *frame_fpstate(void *uctx) {
    return *(volatile uint8_t **)((char *)uctx + 40 + 23 * 8);
}

/* The interrupted code's FPU state into the slot's FPU area. */
STUB static void stub_save_fp(struct stub_slot *slot, void *uctx) {
    volatile uint8_t *fp = frame_fpstate(uctx);
    volatile uint64_t *src = (volatile uint64_t *)fp;
    volatile uint64_t *dst = (volatile uint64_t *)((uint8_t *)slot + STUB_SLOT_FP_OFF);
    uint64_t size = fp ? fp_area_size(fp) : 0;
    for (uint64_t j = 0; j < size / 8; j++)
        dst[j] = src[j];
    for (uint64_t j = size & ~7ULL; j < size; j++)
        ((volatile uint8_t *)dst)[j] = fp[j];
    slot->fp_size = (uint32_t)size;
}

struct k_msghdr {
    void *name;
    uint64_t namelen;
    void *iov;
    uint64_t iovlen;
    void *control;
    uint64_t controllen;
    int flags;
};

/* Descriptors the Sentry sent over the socket at STUB_SOCK_FD (SCM_RIGHTS):
 * up to two, in *fds; returns how many, or -errno.  The zygote gets a new
 * stub's arena and socket with each request; a stub, a shared object's file
 * (OP_RECV_FD). */
STUB static long stub_recv_fds(int *fds) {
    char byte;
    uint64_t iov[2] = {(uint64_t)(uintptr_t)&byte, 1};
    uint64_t control[4] = {0, 0, 0, 0}; /* cmsghdr {len, level, type} + two ints */
    struct k_msghdr msg = {0, 0, iov, 1, control, sizeof control, 0};
    long n = S3(SYS_recvmsg, STUB_SOCK_FD, &msg, 0);
    if (n < 0)
        return n;
    if (control[0] < 20 || (control[1] & 0xffffffffULL) != 1 /* SOL_SOCKET */ ||
        (control[1] >> 32) != 1 /* SCM_RIGHTS */)
        return -EBADF;
    fds[0] = (int)(control[2] & 0xffffffffULL);
    if (control[0] < 24)
        return 1;
    fds[1] = (int)(control[2] >> 32);
    return 2;
}

/* Send the Sentry one descriptor over the zygote's socket (SCM_RIGHTS): a
 * new stub's pidfd, so the confined Sentry signals its stubs through
 * descriptors it holds and never by pid (docs/security.md). */
STUB static long stub_send_fd(int fd) {
    char byte = 'p';
    uint64_t iov[2] = {(uint64_t)(uintptr_t)&byte, 1};
    uint64_t control[3] = {20, 1 | (1ULL << 32), (uint64_t)(uint32_t)fd}; /* len, SOL_SOCKET, SCM_RIGHTS */
    struct k_msghdr msg = {0, 0, iov, 1, control, 24, 0};
    return S3(SYS_sendmsg, STUB_SOCK_FD, &msg, 0);
}

/* Apply the address-space operations the Sentry queued (application memory is
 * always a MAP_SHARED view of the memory memfd). */
STUB static void stub_do_ops(struct stub_slot *slot, void *uctx) {
    uint64_t n = slot->nops;
    long res = 0;
    if (n > STUB_MAX_OPS) {
        slot->op_result = -EINVAL;
        return;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t kind = slot->ops[i].kind, addr = slot->ops[i].addr;
        uint64_t len = slot->ops[i].length, prot = slot->ops[i].prot;
        uint64_t off = slot->ops[i].offset;
        long r;
        if (kind == OP_MAP) {
            /* The descriptor (own arena or object) rides in prot's high half. */
            r = S6(SYS_mmap, addr, len, prot & 0xffffffffULL, K_MAP_SHARED | K_MAP_FIXED,
                   prot >> 32, off);
            if (r != (long)addr && r >= 0)
                r = -EFAULT;
        } else if (kind == OP_UNMAP) {
            r = S2(SYS_munmap, addr, len);
        } else if (kind == OP_PROTECT) {
            r = S3(SYS_mprotect, addr, len, prot);
        } else if (kind == OP_CLONE_THREAD) {
            /* A new host thread in this process: its stack is the top of its
             * slot's signal stack, holding the address of stub_thread_start,
             * which the child reaches through stub_syscall6's `ret`. */
            r = S6(SYS_clone, STUB_THREAD_CLONE_FLAGS, addr, 0, off, 0, 0);
            if (r > 0)
                res = r;
            if (r >= 0)
                continue;
        } else if (kind == OP_RECV_FD) {
            /* A shared object's file, sent by the Sentry for the OP_MAP after
             * this one; it replaces the last one (mappings keep their files). */
            int fds[2] = {-1, -1};
            r = stub_recv_fds(fds);
            if (r == 1) {
                r = fds[0] == STUB_OBJECT_FD ? 0 : S3(SYS_dup3, fds[0], STUB_OBJECT_FD, 0);
                if (fds[0] != STUB_OBJECT_FD)
                    S1(SYS_close, fds[0]);
                if (r > 0)
                    r = 0;
            } else if (r >= 0) {
                r = -EBADF;
            }
        } else if (kind == OP_SAVE_FP) {
            stub_save_fp(slot, uctx); /* for a signal frame */
            r = 0;
        } else if (kind == OP_EXIT_THREAD) {
            S1(SYS_exit, 0);
            r = -EINVAL;
        } else {
            r = -EINVAL;
        }
        if (r < 0) {
            res = r;
            break;
        }
    }
    slot->op_result = res;
}

#include "stub_patch.inc"

/* SIGSYS (a trapped syscall) and synchronous faults: hand the registers to the
 * Sentry, serve its requests, load the registers it wrote, return. */
STUB static void stub_handler(int signo, void *info, void *uctx) {
    uintptr_t here = (uintptr_t)&signo;
    struct stub_slot *slot = (struct stub_slot *)(here & ~(STUB_SLOT_STRIDE - 1));
    volatile uint64_t *gregs = (volatile uint64_t *)((char *)uctx + 40);
    int patched = stub_patch_signal(slot, &signo, gregs); /* stub_patch.inc */
    if (patched == PATCH_SIG_IGNORE)
        return;
    if (patched == PATCH_SIG_RESYNC) {
        stub_post(&slot->state, &slot->sentry_sleeping, SLOT_OPS_DONE);
        goto serve;
    }
    for (int i = 0; i < STUB_NREGS; i++)
        slot->regs[i] = gregs[i];
    slot->via_patch = 0;
    slot->kick_deferred = 0; /* this event reports whatever it was for */
    if (signo == SIGSYS) {
        slot->event = EVENT_SYSCALL;
        uint64_t nr = slot->regs[13]; /* RAX */
        if (nr == 56 || nr == 57 || nr == 58 || nr == 435)
            stub_save_fp(slot, uctx); /* the child's: no OP_SAVE_FP round trip */
    } else if (signo == STUB_KICK_SIGNAL) {
        slot->event = EVENT_INTERRUPT;
    } else {
        slot->event = EVENT_FAULT;
        slot->fault_signo = (uint64_t)signo;
        slot->fault_code = (uint64_t)(int64_t) * (volatile int *)((char *)info + 8);
        slot->fault_addr = *(volatile uint64_t *)((char *)info + 16);
    }
    stub_post(&slot->state, &slot->sentry_sleeping, SLOT_EVENT);
serve:
    for (;;) {
        uint32_t s = stub_wait_sentry(slot);
        if (s == SLOT_REPLY)
            break;
        if (s == SLOT_RESYNC) { /* already in a signal frame: nothing to do */
            slot->via_patch = 0;
            stub_post(&slot->state, &slot->sentry_sleeping, SLOT_OPS_DONE);
            continue;
        }
        stub_do_ops(slot, uctx);
        if (s == SLOT_REPLY_OPS) {
            /* Ops that came with the reply (a round trip saved): no one waits
             * for their result, so an address space the stub cannot make as
             * the Sentry recorded it ends the process. */
            if (slot->op_result < 0)
                S1(SYS_exit_group, 118);
            break;
        }
        stub_post(&slot->state, &slot->sentry_sleeping, SLOT_OPS_DONE);
    }
    for (int i = 0; i < STUB_NREGS; i++)
        gregs[i] = slot->regs[i];
    if (slot->fp_restore) {
        /* rt_sigreturn: the FPU state saved in the application's frame.  A bad
         * area only makes the kernel's own sigreturn kill this process. */
        slot->fp_restore = 0;
        volatile uint8_t *fp = frame_fpstate(uctx);
        volatile uint8_t *src = (volatile uint8_t *)slot + STUB_SLOT_FP_OFF;
        uint64_t size = slot->fp_size;
        if (fp && size <= fp_area_size(fp)) {
            for (uint64_t j = 0; j < size; j++)
                fp[j] = src[j];
        }
    }
    if (slot->set_fs) {
        slot->set_fs = 0;
        S2(SYS_arch_prctl, K_ARCH_SET_FS, slot->fs_base);
    }
    store32(&slot->state, SLOT_RUNNING);
}

struct k_sigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
};

struct k_sigaltstack {
    void *sp;
    int flags;
    int pad;
    uint64_t size;
};

struct k_sock_fprog {
    uint16_t len;
    uint16_t pad[3];
    void *filter;
};

/* A new stub thread (OP_CLONE_THREAD): entered by `ret` on its slot's signal
 * stack; takes that stack as its signal stack, unblocks the fault signals
 * (a clone inherits the handler's all-blocked mask) and traps for its first
 * registers.  Never returns. */
STUB static void stub_thread_start(void) {
    volatile uint64_t marker = 0;
    uint64_t slot = (uint64_t)(uintptr_t)&marker & ~(STUB_SLOT_STRIDE - 1);
    struct k_sigaltstack ss;
    ss.sp = (void *)(slot + STUB_SLOT_HDR);
    ss.flags = 0;
    ss.pad = 0;
    ss.size = STUB_SLOT_STRIDE - STUB_SLOT_HDR;
    S2(SYS_sigaltstack, &ss, 0);
    if (((struct stub_slot *)slot)->use_gs)
        stub_set_gs(slot); /* the clone inherited its creator's GS base */
    uint64_t blocked = ~FAULT_SIGNALS;
    S4(SYS_rt_sigprocmask, SIG_SETMASK, &blocked, 0, 8);
    stub_trap();
    S1(SYS_exit, 0);
}

/* A new stub process: its own slots, a signal stack, the filter, then a trap
 * that hands it to the Sentry for its first registers.  Never returns. */
STUB static void stub_child_main(uint64_t slots_off, uint64_t sentry_pid) {
    struct stub_ctrl *ctrl = (struct stub_ctrl *)STUB_CTRL_ADDR;
    struct stub_sock_filter filter[STUB_MAX_FILTER];
    uint64_t n = ctrl->filter_len;
    if (n == 0 || n > STUB_MAX_FILTER)
        S1(SYS_exit_group, 110);
    for (uint64_t i = 0; i < n; i++) {
        filter[i].code = ctrl->filter[i].code;
        filter[i].jt = ctrl->filter[i].jt;
        filter[i].jf = ctrl->filter[i].jf;
        filter[i].k = ctrl->filter[i].k;
    }
    /* The control block is the zygote's channel to the Sentry: no application
     * process may keep it (it is not in the memory file, so it cannot be mapped
     * back either). */
    if (S2(SYS_munmap, STUB_CTRL_ADDR, STUB_CTRL_SIZE) != 0)
        S1(SYS_exit_group, 117);
    S2(SYS_prctl, PR_SET_PDEATHSIG_, SIGKILL);
    if ((uint64_t)S0(SYS_getppid) != sentry_pid)
        S1(SYS_exit_group, 111);
    long r = S6(SYS_mmap, STUB_SLOTS_ADDR, STUB_SLOTS_SIZE, K_PROT_RW, K_MAP_SHARED | K_MAP_FIXED,
                STUB_MEMFD_FD, slots_off);
    if (r != (long)STUB_SLOTS_ADDR)
        S1(SYS_exit_group, 112);
    struct k_sigaltstack ss;
    ss.sp = (void *)(STUB_SLOTS_ADDR + STUB_SLOT_HDR);
    ss.flags = 0;
    ss.pad = 0;
    ss.size = STUB_SLOT_STRIDE - STUB_SLOT_HDR;
    if (S2(SYS_sigaltstack, &ss, 0) != 0)
        S1(SYS_exit_group, 113);
    /* GS base: the first slot, for the syscall trampoline (stub_patch.inc);
     * before the filter, which allows no ARCH_SET_GS. */
    S2(SYS_arch_prctl, K_ARCH_SET_GS, STUB_SLOTS_ADDR);
    if (S6(SYS_prctl, PR_SET_NO_NEW_PRIVS_, 1, 0, 0, 0, 0) != 0)
        S1(SYS_exit_group, 114);
    struct k_sock_fprog prog;
    prog.len = (uint16_t)n;
    prog.pad[0] = prog.pad[1] = prog.pad[2] = 0;
    prog.filter = filter;
    if (S3(SYS_seccomp, 1 /* SECCOMP_SET_MODE_FILTER */, 0, &prog) != 0)
        S1(SYS_exit_group, 115);
    stub_trap();
    S1(SYS_exit_group, 116);
}

/* No host capability for the zygote and so for every stub cloned from it:
 * application code runs in stubs and needs none (its syscalls are the
 * Sentry's to answer).  It also lets the confined Sentry, which holds none,
 * move stub threads between CPUs: the kernel lets a process without
 * CAP_SYS_NICE change another's affinity or priority only if the target's
 * permitted capabilities are a subset of its own.  The bounding set first
 * (EINVAL past the kernel's last capability, EPERM when not privileged: both
 * just end the loop), then every set empty. */
STUB static void stub_drop_capabilities(void) {
    for (long cap = 0; cap < 64; cap++)
        if (S2(SYS_prctl, PR_CAPBSET_DROP_, cap) != 0)
            break;
    uint32_t header[2] = {0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0};
    uint32_t data[6] = {0, 0, 0, 0, 0, 0};
    S2(SYS_capset, header, data);
}

/* The zygote: owns nothing but the stub region; clones new stub processes on
 * the Sentry's request (as the Sentry's children, CLONE_PARENT), so stubs never
 * inherit the Sentry's own seccomp filter or its memory. */
STUB static void stub_zygote_main(void) {
    struct stub_ctrl *ctrl = (struct stub_ctrl *)STUB_CTRL_ADDR;
    S3(SYS_close_range, 0, STUB_SOCK_FD - 1, 0);
    S3(SYS_close_range, STUB_SOCK_FD + 1, ~0U, 0);
    S2(SYS_munmap, 0, STUB_REGION_START);
    S2(SYS_munmap, STUB_REGION_END, STUB_USER_TOP - STUB_REGION_END);
    stub_drop_capabilities();

    struct k_sigaction sa;
    sa.flags = 0;
    sa.restorer = 0;
    sa.mask = 0;
    sa.handler = 0; /* SIG_DFL: the Sentry's Python handlers are gone */
    for (int sig = 1; sig <= 64; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP)
            S4(SYS_rt_sigaction, sig, &sa, 0, 8);
    }
    sa.handler = (void *)stub_handler;
    sa.flags = K_SA_SIGINFO | K_SA_ONSTACK | K_SA_RESTORER;
    sa.restorer = (void *)stub_restorer;
    sa.mask = ~0ULL;
    S4(SYS_rt_sigaction, SIGSYS, &sa, 0, 8);
    S4(SYS_rt_sigaction, SIGSEGV, &sa, 0, 8);
    S4(SYS_rt_sigaction, SIGBUS, &sa, 0, 8);
    S4(SYS_rt_sigaction, SIGFPE, &sa, 0, 8);
    S4(SYS_rt_sigaction, SIGILL, &sa, 0, 8);
    S4(SYS_rt_sigaction, SIGTRAP, &sa, 0, 8);
    S4(SYS_rt_sigaction, STUB_KICK_SIGNAL, &sa, 0, 8);
    uint64_t blocked = ~FAULT_SIGNALS;
    S4(SYS_rt_sigprocmask, SIG_SETMASK, &blocked, 0, 8);

    for (;;) {
        uint32_t s;
        for (;;) {
            store32(&ctrl->zygote_sleeping, 1);
            s = load32(&ctrl->state);
            if (s == ZYG_REQUEST)
                break;
            S6(SYS_futex, &ctrl->state, FUTEX_WAIT, s, 0, 0, 0);
        }
        store32(&ctrl->zygote_sleeping, 0);
        uint64_t off = ctrl->req_slots_off;
        uint64_t sentry_pid = ctrl->sentry_pid;
        int fds[2] = {-1, -1};
        long pid = stub_recv_fds(fds);
        if (pid == 2) {
            int pidfd = -1;
            pid = S3(SYS_clone, K_CLONE_PARENT | K_CLONE_PIDFD | K_SIGCHLD, 0, &pidfd);
            if (pid > 0) {
                /* The Sentry gets the stub's pidfd before the answer; a
                 * stub it could not get one for is killed, never left. */
                long sent = stub_send_fd(pidfd);
                if (sent < 0) {
                    S2(SYS_kill, pid, SIGKILL);
                    pid = sent;
                }
                S1(SYS_close, pidfd);
            }
            if (pid == 0) {
                /* Its own arena and socket in place of the zygote's socket; the
                 * received numbers are below both (0-4 are free). */
                if (S2(SYS_dup2, fds[0], STUB_MEMFD_FD) != STUB_MEMFD_FD ||
                    S2(SYS_dup2, fds[1], STUB_SOCK_FD) != STUB_SOCK_FD)
                    S1(SYS_exit_group, 118);
                if (fds[0] != STUB_MEMFD_FD)
                    S1(SYS_close, fds[0]);
                S1(SYS_close, fds[1]);
                stub_child_main(off, sentry_pid);
            }
        } else if (pid >= 0) {
            pid = -EBADF;
        }
        for (int i = 0; i < 2; i++)
            if (fds[i] >= 0)
                S1(SYS_close, fds[i]);
        ctrl->result = pid;
        stub_post(&ctrl->state, &ctrl->sentry_sleeping, ZYG_DONE);
    }
}

/* ---------------- Sentry side (ordinary code, runs in the Sentry) ------------- */

int stub_abi_version(void) { return STUB_ABI_VERSION; }
uint64_t stub_code_start(void) { return (uint64_t)(uintptr_t)__start_pyvisor_stub; }
uint64_t stub_code_size(void) { return (uint64_t)(__stop_pyvisor_stub - __start_pyvisor_stub); }
uint64_t stub_thread_start_offset(void) {
    return (uint64_t)((char *)stub_thread_start - __start_pyvisor_stub);
}
uint64_t stub_syscall_ip_offset(void) {
    return (uint64_t)(stub_syscall_insn - __start_pyvisor_stub) + 2;
}

#include "stub_patch_sentry.inc"

static long raw(long nr, long a, long b, long c, long d, long e, long f) {
    long r = syscall(nr, a, b, c, d, e, f);
    return r == -1 ? -errno : r;
}

/* glibc registers an rseq area in every thread's TLS and a fork inherits the
 * registration.  The zygote unmaps that TLS, and the kernel's next rseq update
 * (on any preemption or clone) would fault and kill it with SIGSEGV: so
 * unregister first.  glibc registered either 32 bytes or __rseq_size. */
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));
#define RSEQ_SIG_ 0x53053053
#define RSEQ_FLAG_UNREGISTER_ 1

static void unregister_rseq(void) {
    if (&__rseq_offset == NULL || &__rseq_size == NULL || __rseq_size == 0)
        return;
    char *area = (char *)__builtin_thread_pointer() + __rseq_offset;
    if (S4(SYS_rseq, area, 32, RSEQ_FLAG_UNREGISTER_, RSEQ_SIG_) == 0)
        return;
    S4(SYS_rseq, area, __rseq_size, RSEQ_FLAG_UNREGISTER_, RSEQ_SIG_);
}

/* Fork the zygote from the calling (main) thread.  The control block must
 * already be mapped MAP_SHARED|MAP_ANONYMOUS at STUB_CTRL_ADDR in the Sentry:
 * the zygote inherits it, and it lives in no file an application could map.
 * In the child only raw syscalls run until it jumps to the copied stub code. */
long stub_start_zygote(int sock) {
    long sentry = getpid();
    long pid = raw(SYS_clone, SIGCHLD, 0, 0, 0, 0, 0);
    if (pid != 0)
        return pid;
    S2(SYS_prctl, PR_SET_PDEATHSIG_, SIGKILL);
    if (S0(SYS_getppid) != sentry)
        S1(SYS_exit_group, 101);
    unregister_rseq();
    /* Out of the way first (a copy at 64 or above, so the dup2 below cannot
     * clobber its own source), then in place; close_range drops the copy
     * and every other descriptor the Sentry had: the zygote holds no
     * memory file at all. */
    long k = S3(SYS_fcntl, sock, 0 /* F_DUPFD */, 64);
    if (k < 0 || S2(SYS_dup2, k, STUB_SOCK_FD) != STUB_SOCK_FD)
        S1(SYS_exit_group, 102);
    /* The stub code is a private copy: every stub process gets it copy-on-write,
     * so an application that makes its copy writable changes only its own. */
    if (S6(SYS_mmap, STUB_CODE_ADDR, STUB_CODE_SIZE, K_PROT_RW,
           K_MAP_PRIVATE | K_MAP_ANONYMOUS | K_MAP_FIXED, -1, 0) != (long)STUB_CODE_ADDR)
        S1(SYS_exit_group, 103);
    volatile char *dst = (volatile char *)STUB_CODE_ADDR;
    uint64_t size = (uint64_t)(__stop_pyvisor_stub - __start_pyvisor_stub);
    for (uint64_t i = 0; i < size; i++)
        dst[i] = __start_pyvisor_stub[i];
    if (S3(SYS_mprotect, STUB_CODE_ADDR, STUB_CODE_SIZE, K_PROT_RX) != 0)
        S1(SYS_exit_group, 104);
    if (S6(SYS_mmap, STUB_ZSTACK_ADDR, STUB_ZSTACK_SIZE, K_PROT_RW,
           K_MAP_PRIVATE | K_MAP_ANONYMOUS | K_MAP_FIXED, -1, 0) != (long)STUB_ZSTACK_ADDR)
        S1(SYS_exit_group, 105);
    uint64_t entry = STUB_CODE_ADDR + (uint64_t)((char *)stub_zygote_main - __start_pyvisor_stub);
    uint64_t sp = STUB_ZSTACK_ADDR + STUB_ZSTACK_SIZE;
    __asm__ volatile("mov %0, %%rsp\n\txor %%ebp, %%ebp\n\tcall *%1\n\tud2\n"
                     :
                     : "r"(sp), "r"(entry)
                     : "memory");
    __builtin_unreachable();
}

static int64_t now_ns(void);

/* The Sentry's sleeps: only a wake for the Sentry's bit ends them (the stub
 * sleeps on the same word with its own bit while a task is parked). */
static int futex_wait_ns(uint32_t *word, uint32_t val, int64_t ns) {
    int64_t at = now_ns() + ns; /* FUTEX_WAIT_BITSET takes an absolute time */
    struct timespec ts = {at / 1000000000, at % 1000000000};
    return (int)raw(SYS_futex, (long)word, FUTEX_WAIT_BITSET, val, (long)&ts, 0,
                    FUTEX_BIT_SENTRY);
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Wait until *word is want or also (pass want twice for one value): yield the
 * CPU (spin_cycles 0: the peer shares it) or spin for spin_cycles of TSC, then
 * futex sleeps with the peer's wake-up flag set.  0 when the yield or spin
 * found it, 1 when it took a sleep (the caller adapts its spin), -ETIMEDOUT
 * after timeout_ns so the caller can check whether the peer is still alive.
 * *seen is the value found. */
static int wait_states(uint32_t *word, uint32_t *sleeping, uint32_t want, uint32_t also,
                       uint64_t spin_cycles, int64_t timeout_ns, uint32_t *seen) {
    uint64_t start = rdtsc();
    uint32_t s;
    if (spin_cycles == 0) { /* the peer shares this CPU: let it run (stub_wait_sentry) */
        do {
            sched_yield();
            s = load32(word);
            if (s == want || s == also) {
                *seen = s;
                return 0;
            }
        } while (rdtsc() - start < YIELD_CYCLES);
    }
    while (rdtsc() - start < spin_cycles) {
        s = load32(word);
        if (s == want || s == also) {
            *seen = s;
            return 0;
        }
        cpu_relax();
    }
    int64_t deadline = now_ns() + timeout_ns;
    for (;;) {
        store32(sleeping, 1);
        s = load32(word);
        if (s == want || s == also) {
            store32(sleeping, 0);
            *seen = s;
            return 1;
        }
        int64_t left = deadline - now_ns();
        if (left <= 0) {
            store32(sleeping, 0);
            return -ETIMEDOUT;
        }
        futex_wait_ns(word, s, left);
        store32(sleeping, 0);
        s = load32(word);
        if (s == want || s == also) {
            *seen = s;
            return 1;
        }
    }
}

static int wait_word(uint32_t *word, uint32_t *sleeping, uint32_t want, uint64_t spin_cycles,
                     int64_t timeout_ns) {
    uint32_t seen;
    return wait_states(word, sleeping, want, want, spin_cycles, timeout_ns, &seen);
}

static void sentry_publish(uint32_t *word, uint32_t *peer_sleeping, uint32_t v) {
    store32(word, v);
    if (load32(peer_sleeping))
        raw(SYS_futex, (long)word, FUTEX_WAKE_BITSET, 1, 0, 0, FUTEX_BIT_STUB);
}

/* Parking (sentry/kernel/parking.py): a task's Sentry thread waits for the
 * task's next event while another thread may finish its blocked syscall.
 * Whoever moves the state out of SLOT_PARKED owns the syscall. */
static int cas32(uint32_t *word, uint32_t from, uint32_t to) {
    return __atomic_compare_exchange_n(word, &from, to, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

void sentry_park(struct stub_slot *slot) { store32(&slot->state, SLOT_PARKED); }

/* Until the task's next event (0), an unpark (1), or the timeout (-ETIMEDOUT). */
int sentry_park_wait(struct stub_slot *slot, int64_t timeout_ns) {
    uint32_t seen;
    int r = wait_states(&slot->state, &slot->sentry_sleeping, SLOT_EVENT, SLOT_UNPARKED, 0,
                        timeout_ns, &seen);
    return r < 0 ? r : seen == SLOT_UNPARKED;
}

/* Take a parked syscall over (1), or find it owned already (0). */
int sentry_claim(struct stub_slot *slot) { return cas32(&slot->state, SLOT_PARKED, SLOT_CLAIMED); }

/* A claimed syscall's result: RAX, and the stub resumes the application. */
void sentry_claimed_return(struct stub_slot *slot, uint64_t rax) {
    slot->regs[13] = rax;
    sentry_publish(&slot->state, &slot->stub_sleeping, SLOT_REPLY);
}

static int hand_back(struct stub_slot *slot, uint32_t from) {
    if (!cas32(&slot->state, from, SLOT_UNPARKED))
        return 0;
    if (load32(&slot->sentry_sleeping))
        raw(SYS_futex, (long)&slot->state, FUTEX_WAKE_BITSET, 1, 0, 0, FUTEX_BIT_SENTRY);
    return 1;
}

/* Hand a parked syscall back to the task's own thread (1), or find it taken
 * over or answered already (0). */
int sentry_unpark(struct stub_slot *slot) { return hand_back(slot, SLOT_PARKED); }

/* A claimer that cannot finish the syscall hands it back (always succeeds). */
int sentry_unclaim(struct stub_slot *slot) { return hand_back(slot, SLOT_CLAIMED); }

int sentry_wait(struct stub_slot *slot, uint32_t want, uint64_t spin_cycles, int64_t timeout_ns) {
    return wait_word(&slot->state, &slot->sentry_sleeping, want, spin_cycles, timeout_ns);
}

void sentry_post(struct stub_slot *slot, uint32_t state) {
    sentry_publish(&slot->state, &slot->stub_sleeping, state);
}

int sentry_post_wait(struct stub_slot *slot, uint32_t state, uint32_t want, uint64_t spin_cycles,
                     int64_t timeout_ns) {
    sentry_publish(&slot->state, &slot->stub_sleeping, state);
    return wait_word(&slot->state, &slot->sentry_sleeping, want, spin_cycles, timeout_ns);
}

/* Interrupt one stub thread running application code. */
int sentry_kick(int pid, int tid) {
    return (int)raw(SYS_tgkill, pid, tid, STUB_KICK_SIGNAL, 0, 0, 0);
}

/* The hot path in one call: the syscall's result into RAX, resume the stub,
 * wait for its next event. */
int sentry_syscall_return(struct stub_slot *slot, uint64_t rax, uint64_t spin_cycles,
                          int64_t timeout_ns) {
    slot->regs[13] = rax;
    sentry_publish(&slot->state, &slot->stub_sleeping, SLOT_REPLY);
    return wait_word(&slot->state, &slot->sentry_sleeping, SLOT_EVENT, spin_cycles, timeout_ns);
}

long zygote_request(struct stub_ctrl *ctrl, uint64_t slots_off, uint64_t spin_cycles,
                    int64_t timeout_ns) {
    ctrl->req_slots_off = slots_off;
    ctrl->result = -EAGAIN;
    sentry_publish(&ctrl->state, &ctrl->zygote_sleeping, ZYG_REQUEST);
    int r = wait_word(&ctrl->state, &ctrl->sentry_sleeping, ZYG_DONE, spin_cycles, timeout_ns);
    if (r < 0)
        return r;
    long pid = ctrl->result;
    store32(&ctrl->state, ZYG_IDLE);
    return pid;
}
