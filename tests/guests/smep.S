# SMEP: with CR4.SMEP, ring 0 may not execute from a user page (#PF with I/D|P = 0x11);
# with SMEP clear it may. CPUID advertises it.
.include "lib/long.inc"
test_main:
    mov eax, 7
    xor ecx, ecx
    cpuid
    test ebx, 1 << 7
    jz bad
    # This code and its stack live in the first 2 MiB: make them supervisor-only.
    and qword ptr [PD], ~4
    mov rax, cr3
    mov cr3, rax
    mov byte ptr [0x600000], 0xc3    # RET on a user page
    mov eax, 0x600000
    call rax
    mov rax, cr4
    or rax, 1 << 20
    mov cr4, rax
    lea r15, [rip + 1f]
    mov eax, 0x600000
    call rax
    jmp bad
1:  cmp qword ptr [LAST_VECTOR], 14
    jne bad
    cmp qword ptr [LAST_ERROR], 0x11
    jne bad
    cmp qword ptr [LAST_CR2], 0x600000
    jne bad
    jmp pass
bad:
    mov al, 2
    jmp fail
