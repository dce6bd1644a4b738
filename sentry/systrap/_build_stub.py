"""cffi build script for the systrap stub (``cffi_modules`` in pyproject.toml).

Run directly (``python3 sentry/systrap/_build_stub.py``) to compile in place.
The compile flags keep the stub section self-contained: no stack protector (the
application owns %fs), no builtins or loop-to-memcpy rewrites (libc is not
mapped in a stub), no jump tables (they would live in .rodata, outside the
copied section), no CET notes or unwind tables needed.
"""

from __future__ import annotations

import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))

CDEF = """
#define STUB_ABI_VERSION ...
#define STUB_REGION_START ...
#define STUB_REGION_END ...
#define STUB_CODE_ADDR ...
#define STUB_CODE_SIZE ...
#define STUB_CTRL_ADDR ...
#define STUB_CTRL_SIZE ...
#define STUB_VVAR_ADDR ...
#define STUB_VDSO_ADDR ...
#define STUB_VDSO_SIZE ...
#define STUB_SLOTS_ADDR ...
#define STUB_SLOT_STRIDE ...
#define STUB_SLOT_HDR ...
#define STUB_MAX_THREADS ...
#define STUB_SLOTS_SIZE ...
#define STUB_MEMFD_FD ...
#define STUB_SOCK_FD ...
#define STUB_OBJECT_FD ...
#define STUB_NREGS ...
#define STUB_MAX_OPS ...
#define STUB_MAX_FILTER ...
#define SLOT_RUNNING ...
#define SLOT_EVENT ...
#define SLOT_REPLY ...
#define SLOT_OPS ...
#define SLOT_OPS_DONE ...
#define SLOT_REPLY_OPS ...
#define SLOT_PARKED ...
#define SLOT_CLAIMED ...
#define SLOT_UNPARKED ...
#define SLOT_RESYNC ...
#define STUB_PATCH_BASE ...
#define STUB_PATCH_SIZE ...
#define EVENT_SYSCALL ...
#define EVENT_FAULT ...
#define EVENT_INTERRUPT ...
#define OP_MAP ...
#define OP_UNMAP ...
#define OP_PROTECT ...
#define OP_CLONE_THREAD ...
#define OP_EXIT_THREAD ...
#define OP_SAVE_FP ...
#define OP_RECV_FD ...
#define STUB_SLOT_FP_OFF ...
#define STUB_SLOT_FP_MAX ...
#define STUB_THREAD_CLONE_FLAGS ...

struct stub_op { uint64_t kind; uint64_t addr; uint64_t length; uint64_t prot; uint64_t offset; };
struct stub_slot {
    uint32_t state;
    uint32_t stub_sleeping;
    uint32_t sentry_sleeping;
    uint32_t event;
    uint64_t regs[18];
    uint64_t fault_signo;
    uint64_t fault_code;
    uint64_t fault_addr;
    uint64_t set_fs;
    uint64_t fs_base;
    uint64_t nops;
    int64_t op_result;
    uint64_t spin_budget;
    uint32_t thread_alive;
    uint32_t fp_size;
    uint32_t fp_restore;
    uint32_t spin_ok;
    uint32_t via_patch;
    uint32_t kick_deferred;
    uint32_t use_gs;
    uint32_t pad2;
    struct stub_op ops[64];
};
struct stub_sock_filter { uint16_t code; uint8_t jt; uint8_t jf; uint32_t k; };
struct stub_ctrl {
    uint32_t state;
    uint32_t zygote_sleeping;
    uint32_t sentry_sleeping;
    uint32_t pad;
    uint64_t req_slots_off;
    int64_t result;
    uint64_t sentry_pid;
    uint64_t filter_len;
    struct stub_sock_filter filter[256];
};

int stub_abi_version(void);
uint64_t stub_code_start(void);
uint64_t stub_code_size(void);
uint64_t stub_syscall_ip_offset(void);
uint64_t stub_thread_start_offset(void);
long stub_start_zygote(int sock);
int sentry_wait(struct stub_slot *slot, uint32_t want, uint64_t spin_cycles, int64_t timeout_ns);
void sentry_post(struct stub_slot *slot, uint32_t state);
int sentry_post_wait(struct stub_slot *slot, uint32_t state, uint32_t want,
                     uint64_t spin_cycles, int64_t timeout_ns);
long zygote_request(struct stub_ctrl *ctrl, uint64_t slots_off, uint64_t spin_cycles,
                    int64_t timeout_ns);
int sentry_kick(int pid, int tid);
void sentry_park(struct stub_slot *slot);
int sentry_park_wait(struct stub_slot *slot, int64_t timeout_ns);
int sentry_claim(struct stub_slot *slot);
void sentry_claimed_return(struct stub_slot *slot, uint64_t rax);
int sentry_unpark(struct stub_slot *slot);
int sentry_unclaim(struct stub_slot *slot);
int sentry_syscall_return(struct stub_slot *slot, uint64_t rax, uint64_t spin_cycles,
                          int64_t timeout_ns);
uint64_t stub_patch_entry_addr(void);
uint64_t stub_patch_resync_addr(void);
int sentry_patch_cas8(uint64_t p, uint64_t old, uint64_t new_);
"""

COMPILE_ARGS = [
    "-O2",
    "-fno-stack-protector",
    "-fno-builtin",
    "-fno-tree-loop-distribute-patterns",
    "-fno-jump-tables",
    "-fno-tree-vectorize",
    "-fcf-protection=none",
    "-fno-asynchronous-unwind-tables",
    "-Wall",
]

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
_src = "sentry/systrap/stub.c" if os.path.exists("sentry/systrap/stub.c") else os.path.join(
    HERE, "stub.c"
)
ffibuilder.set_source(
    "sentry.systrap._stub",
    '#include "stub.h"\n'
    "int stub_abi_version(void);\n"
    "uint64_t stub_code_start(void);\n"
    "uint64_t stub_code_size(void);\n"
    "uint64_t stub_syscall_ip_offset(void);\n"
    "uint64_t stub_thread_start_offset(void);\n"
    "long stub_start_zygote(int sock);\n"
    "int sentry_wait(struct stub_slot *, uint32_t, uint64_t, int64_t);\n"
    "void sentry_post(struct stub_slot *, uint32_t);\n"
    "int sentry_post_wait(struct stub_slot *, uint32_t, uint32_t, uint64_t, int64_t);\n"
    "long zygote_request(struct stub_ctrl *, uint64_t, uint64_t, int64_t);\n"
    "int sentry_kick(int pid, int tid);\n"
    "void sentry_park(struct stub_slot *);\n"
    "int sentry_park_wait(struct stub_slot *, int64_t);\n"
    "int sentry_claim(struct stub_slot *);\n"
    "void sentry_claimed_return(struct stub_slot *, uint64_t);\n"
    "int sentry_unpark(struct stub_slot *);\n"
    "int sentry_unclaim(struct stub_slot *);\n"
    "int sentry_syscall_return(struct stub_slot *, uint64_t, uint64_t, int64_t);\n"
    "uint64_t stub_patch_entry_addr(void);\n"
    "uint64_t stub_patch_resync_addr(void);\n"
    "int sentry_patch_cas8(uint64_t, uint64_t, uint64_t);\n",
    sources=[_src],
    include_dirs=[HERE],
    extra_compile_args=COMPILE_ARGS,
)

if __name__ == "__main__":
    os.chdir(os.path.dirname(os.path.dirname(HERE)))
    ffibuilder.compile(tmpdir=".", verbose=False)
