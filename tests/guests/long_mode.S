# Long mode's user/kernel transitions: FS and GS bases through their MSRs, SWAPGS, SYSRET to
# ring 3, a DPL-0 gate refused from ring 3 (#GP with the IDT error code), SYSCALL back to
# ring 0, and INT n from ring 3 through a DPL-3 gate onto IST1 (aligned down to 16 bytes).
.include "lib/long.inc"
.set SEEN_RSP, 0x600
test_main:
    # FS and GS bases, SWAPGS.
    mov qword ptr [0x700], 0x1111
    mov qword ptr [0x708], 0x2222
    mov ecx, 0xc0000100              # FS_BASE
    mov eax, 0x700
    xor edx, edx
    wrmsr
    cmp qword ptr fs:[0], 0x1111
    jne bad
    mov ecx, 0xc0000101              # GS_BASE
    wrmsr
    mov ecx, 0xc0000102              # KERNEL_GS_BASE
    mov eax, 0x708
    wrmsr
    swapgs
    cmp qword ptr gs:[0], 0x2222
    jne bad
    swapgs
    cmp qword ptr gs:[0], 0x1111
    jne bad

    mov edi, 0x41
    lea rsi, [rip + bad]
    mov edx, 0x8e                    # DPL 0
    xor ecx, ecx
    call set_gate
    mov edi, 0x40
    lea rsi, [rip + int40_handler]
    mov edx, 0xee                    # DPL 3
    mov ecx, 1
    mov qword ptr [TSS + 36], 0xa0008    # IST1, not 16-byte aligned
    call set_gate

    lea rax, [rip + after_syscall]
    mov qword ptr [SYSCALL_TARGET], rax
    lea rcx, [rip + user]
    jmp to_user
user:
    mov ax, cs
    cmp ax, 0x2b
    jne user_bad
    lea r15, [rip + 1f]
    int 0x41
    jmp user_bad
1:  cmp qword ptr [LAST_ERROR], 0x41 * 8 + 2
    jne user_bad
    cmp qword ptr [LAST_CS], 0x2b
    jne user_bad
    mov eax, 42
    syscall
user_bad:
    ud2

after_syscall:
    cmp eax, 42
    jne bad
    mov ax, cs
    cmp ax, 0x08
    jne bad
    mov ax, ss
    cmp ax, 0x10
    jne bad
    lea rcx, [rip + user_int]
    jmp to_user
user_int:
    int 0x40
    jmp user_bad

int40_handler:
    mov qword ptr [SEEN_RSP], rsp
    mov rsp, KERNEL_STACK
    cmp qword ptr [SEEN_RSP], 0xa0000 - 40
    jne bad
    cmp qword ptr [0xa0000 - 16], USER_STACK   # saved RSP
    jne bad
    cmp qword ptr [0xa0000 - 32], 0x2b         # saved CS
    jne bad
    jmp pass
bad:
    mov al, 2
    jmp fail
