# #GP (vector 13): a non-canonical data address, a privileged instruction and an unknown
# MSR in ring 0, and from ring 3: MOV to CR0, HLT, CLI at IOPL 0 and a far load of a
# kernel data segment (with the selector as error code).
.include "lib/long.inc"
test_main:
    lea r15, [rip + 1f]
    mov rbx, 0xffff000000000000
    mov qword ptr [rbx], rax
    jmp bad
1:  cmp qword ptr [LAST_VECTOR], 13
    jne bad
    lea r15, [rip + 2f]
    mov ecx, 0x12345678              # no such MSR
    rdmsr
    jmp bad
2:  cmp qword ptr [LAST_ERROR], 0
    jne bad
    lea rax, [rip + kernel_again]
    mov qword ptr [SYSCALL_TARGET], rax
    lea rcx, [rip + user]
    jmp to_user
user:
    lea r15, [rip + 1f]
    mov rax, cr0
    jmp user_bad
1:  lea r15, [rip + 2f]
    hlt
    jmp user_bad
2:  lea r15, [rip + 3f]
    cli
    jmp user_bad
3:  lea r15, [rip + 4f]
    mov ax, 0x10
    mov ds, ax
    jmp user_bad
4:  cmp qword ptr [LAST_ERROR], 0x10
    jne user_bad
    cmp qword ptr [LAST_CS], 0x2b
    jne user_bad
    syscall
user_bad:
    ud2
kernel_again:
    cmp qword ptr [FAULTS], 6
    jne bad
    jmp pass
bad:
    mov al, 2
    jmp fail
