/* jump_syscall(nr, a1..a6, insn): make syscall ``nr`` from the instruction at
 * ``insn`` (the stub's one trusted `syscall`), as an application that jumps
 * there would.  Shared by the programs that probe the stub's filter from its
 * own instruction pointer (escape_stub, isolation_probe, object_seal_probe). */
#ifndef PYVISOR_JUMP_SYSCALL_H
#define PYVISOR_JUMP_SYSCALL_H

long jump_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6, void *insn);
__asm__(".globl jump_syscall\n"
        "jump_syscall:\n"
        "  mov %rdi, %rax\n"
        "  mov %rsi, %rdi\n"
        "  mov %rdx, %rsi\n"
        "  mov %rcx, %rdx\n"
        "  mov %r8, %r10\n"
        "  mov %r9, %r8\n"
        "  mov 8(%rsp), %r9\n"
        "  mov 16(%rsp), %r11\n"
        "  call *%r11\n"
        "  ret\n");

#endif
