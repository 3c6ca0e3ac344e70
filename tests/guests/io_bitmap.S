# I/O permission: in ring 3 with IOPL 0 the TSS bitmap decides per port (a set bit is #GP(0),
# for any byte of a multi-byte access); with IOPL 3 the bitmap is not consulted.
.include "lib/long.inc"
.set BITMAP, TSS + 0x68
test_main:
    mov byte ptr [BITMAP + 0x80 / 8], 1 << (0x80 % 8)      # deny port 0x80
    mov byte ptr [BITMAP + 0x73 / 8], 1 << (0x73 % 8)      # deny port 0x73
    lea rax, [rip + kernel_again]
    mov qword ptr [SYSCALL_TARGET], rax
    lea rcx, [rip + user]
    jmp to_user
user:
    out 0x81, al                     # allowed
    lea r15, [rip + 1f]
    out 0x80, al
    jmp user_bad
1:  cmp qword ptr [LAST_VECTOR], 13
    jne user_bad
    lea r15, [rip + 2f]
    mov dx, 0x72
    in ax, dx                        # ports 0x72-0x73: 0x73 is denied
    jmp user_bad
2:  cmp qword ptr [LAST_ERROR], 0
    jne user_bad
    in al, dx                        # port 0x72 alone is fine
    syscall
user_bad:
    ud2
kernel_again:
    cmp qword ptr [FAULTS], 2
    jne bad
    # IOPL 3: the bitmap is ignored.
    lea rax, [rip + kernel_done]
    mov qword ptr [SYSCALL_TARGET], rax
    lea rcx, [rip + user_iopl3]
    mov r11, 0x3002
    mov rsp, USER_STACK
    sysretq
user_iopl3:
    out 0x80, al
    syscall
kernel_done:
    cmp qword ptr [FAULTS], 2
    jne bad
    jmp pass
bad:
    mov al, 2
    jmp fail
