/*
 * pyvisor systrap stub: shared layout between the C stub and the Python Sentry.
 *
 * The stub region is a fixed range of every stub process's address space, above
 * the application's range (sentry/mm/layout.py: APP_END == STUB_REGION_START).
 * Everything the stub needs lives there: its code (copied out of this module), a
 * control block (zygote requests, the seccomp program), the zygote's private
 * stack, and the per-thread sysmsg slots, each slot followed by the thread's
 * signal stack.  Only the slots are in the application memory file (the
 * Sentry reads them through its own mapping).  The code is a private copy in
 * each process, and the control block is shared anonymous memory between the
 * Sentry and the zygote only, unmapped by every stub before it runs
 * application code: an application can map any piece of the memory file
 * through the stub's allowed mmap, so nothing that could free it lives there.
 */
#ifndef PYVISOR_STUB_H
#define PYVISOR_STUB_H

#include <stdint.h>

#define STUB_ABI_VERSION 15

#define STUB_REGION_START 0x7e0000000000ULL
#define STUB_CODE_ADDR    (STUB_REGION_START + 0x0)
#define STUB_CODE_SIZE    0x10000ULL
#define STUB_CTRL_ADDR    (STUB_REGION_START + 0x10000)
#define STUB_CTRL_SIZE    0x10000ULL
#define STUB_ZSTACK_ADDR  (STUB_REGION_START + 0x20000)
#define STUB_ZSTACK_SIZE  0x10000ULL
/* The vDSO (sentry/vdso/): the time page, read-only in every stub, then the
 * image one page above it.  The Sentry maps both before forking the zygote,
 * so every stub inherits them; the filter lets no stub remap or re-protect
 * anything in the stub region. */
#define STUB_VVAR_ADDR    (STUB_REGION_START + 0x30000)
#define STUB_VDSO_ADDR    (STUB_REGION_START + 0x31000)
#define STUB_VDSO_SIZE    0xf000ULL
#define STUB_SLOTS_ADDR   (STUB_REGION_START + 0x100000)
#define STUB_SLOT_STRIDE  0x10000ULL /* slot header + signal stack; power of two */
#define STUB_MAX_THREADS  64
#define STUB_SLOTS_SIZE   (STUB_SLOT_STRIDE * STUB_MAX_THREADS)
#define STUB_REGION_END   (STUB_REGION_START + 0x1000000)
#define STUB_SLOT_HDR     0x3000ULL /* slot struct + FPU area; the rest is signal stack */
#define STUB_SLOT_FP_OFF  0x1000ULL /* where OP_SAVE_FP puts the thread's FPU state */
#define STUB_SLOT_FP_MAX  0x2000ULL
#define STUB_USER_TOP     0x7ffffffff000ULL

/* A stub process's descriptors (it has no others): its address space's own
 * arena of the memory file, its socket from the Sentry, and the shared
 * object it last received over it (OP_RECV_FD), which it maps from there.
 * Number 4 is left unused: the common arena once sat there, and no stub or
 * zygote holds it now (docs/security.md, "Memory isolation").  The zygote
 * holds only, at STUB_SOCK_FD, the socket the Sentry passes each new stub's
 * arena and socket over (SCM_RIGHTS). */
#define STUB_MEMFD_FD 3
#define STUB_SOCK_FD 5
#define STUB_OBJECT_FD 6

/* Slot states: the futex word.  Who writes which transition:
 *   stub:   RUNNING -> EVENT (trap or fault saved), OPS -> OPS_DONE
 *   sentry: EVENT -> REPLY (registers written), EVENT -> OPS (map ops queued)
 *   stub:   REPLY -> RUNNING (registers loaded, returning to the app)        */
#define SLOT_RUNNING  0
#define SLOT_EVENT    1
#define SLOT_REPLY    2
#define SLOT_OPS      3
#define SLOT_OPS_DONE 4
#define SLOT_REPLY_OPS 5 /* sentry: EVENT -> REPLY_OPS (apply the ops, then as REPLY) */
/* Parking, Sentry only (the stub waits on as before): EVENT -> PARKED by the
 * task's thread; PARKED -> CLAIMED -> REPLY by a thread finishing the syscall;
 * PARKED or CLAIMED -> UNPARKED hands it back to the task's thread. */
#define SLOT_PARKED   6
#define SLOT_CLAIMED  7
#define SLOT_UNPARKED 8
/* Syscall patching (sentry/systrap/patch.py): a syscall that came through the
 * trampoline has no signal frame.  Before the Sentry needs one (the FPU state
 * of a signal frame, or loading one), it asks for RESYNC: the trampoline then
 * enters the signal handler through a trapping syscall, which answers
 * OPS_DONE from a real frame and goes on as for any trap. */
#define SLOT_RESYNC   9
/* Futex bitsets: stub and Sentry thread may sleep on one slot word at once. */
#define FUTEX_BIT_STUB   1
#define FUTEX_BIT_SENTRY 2

#define EVENT_SYSCALL 1
#define EVENT_FAULT   2
#define EVENT_INTERRUPT 3
#define STUB_KICK_SIGNAL 23 /* SIGURG: nothing else in a stub uses it */

#define STUB_NREGS 18 /* ucontext gregs R8..EFL */
#define STUB_MAX_OPS 64

#define OP_MAP     1
#define OP_UNMAP   2
#define OP_PROTECT 3
#define OP_CLONE_THREAD 4
#define OP_EXIT_THREAD 5
#define OP_SAVE_FP 6
#define OP_RECV_FD 7 /* take the next descriptor off the socket, as STUB_OBJECT_FD */
/* CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|
 * CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID: the kernel marks the slot's
 * thread_alive word and clears it once the host thread is gone, so a slot (and
 * the signal stack an exiting thread is still standing on) is reused only then. */
#define STUB_THREAD_CLONE_FLAGS 0x1250f00

struct stub_op {
    uint64_t kind;
    uint64_t addr;
    uint64_t length;
    uint64_t prot;
    uint64_t offset;
};

struct stub_slot {
    uint32_t state;
    uint32_t stub_sleeping;
    uint32_t sentry_sleeping;
    uint32_t event;
    uint64_t regs[STUB_NREGS];
    uint64_t fault_signo;
    uint64_t fault_code;
    uint64_t fault_addr;
    uint64_t set_fs;
    uint64_t fs_base;
    uint64_t nops;
    int64_t op_result;
    uint64_t spin_budget;
    uint32_t thread_alive; /* host tid while the host thread lives (CLONE_CHILD_CLEARTID) */
    uint32_t fp_size;      /* bytes OP_SAVE_FP stored at STUB_SLOT_FP_OFF */
    uint32_t fp_restore;   /* set by the Sentry: load the FPU area before returning */
    uint32_t spin_ok;      /* set by the Sentry: the two sides run on different CPUs, spin */
    uint32_t via_patch;    /* stub: this event came through the trampoline (no signal frame) */
    uint32_t kick_deferred;/* stub: a kick that hit the trampoline, to report once answered */
    uint32_t use_gs;       /* set by the Sentry: a new thread points its GS base at its slot */
    uint32_t pad2;
    struct stub_op ops[STUB_MAX_OPS];
};

/* Syscall patching: `mov $nr,%eax; syscall` (b8 imm32 0f 05) becomes
 * `jmp *abs32` (ff 24 25 abs32) through an entry of the patch table, a page
 * range in the application's address space whose 32-bit address ends in the
 * bytes 0f 05: the last two bytes of a patched site are still `syscall`, so a
 * thread that had executed the old `mov` just before the write traps as it
 * always did.  The table's entry 0 holds the address of stub_patch_entry; the
 * per-site code it points to sets RAX (the number) and RCX (the return
 * address) and jumps there (patch.py writes both). */
#define STUB_PATCH_BASE 0x050f0000ULL
#define STUB_PATCH_SIZE 0x10000ULL

#define STUB_MAX_FILTER 256

struct stub_sock_filter {
    uint16_t code;
    uint8_t jt;
    uint8_t jf;
    uint32_t k;
};

/* Zygote control: the Sentry asks the zygote for a new stub process. */
#define ZYG_IDLE    0
#define ZYG_REQUEST 1
#define ZYG_DONE    2

struct stub_ctrl {
    uint32_t state;
    uint32_t zygote_sleeping;
    uint32_t sentry_sleeping;
    uint32_t pad;
    uint64_t req_slots_off; /* memfd offset of the new process's slot region */
    int64_t result;         /* the new stub's pid, or -errno */
    uint64_t sentry_pid;
    uint64_t filter_len;
    struct stub_sock_filter filter[STUB_MAX_FILTER];
};

#endif
