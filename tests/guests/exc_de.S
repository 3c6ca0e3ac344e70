# #DE (vector 0): DIV by zero and an IDIV quotient that does not fit; the faulting
# instruction is reported (saved RIP) and leaves RAX/RDX unchanged.
.include "lib/long.inc"
test_main:
    lea r15, [rip + 1f]
    mov eax, 1
    xor edx, edx
    xor ecx, ecx
    div ecx
    jmp bad
1:  cmp qword ptr [LAST_VECTOR], 0
    jne bad
    cmp eax, 1
    jne bad
    lea r15, [rip + 2f]
    lea rbx, [rip + 3f]
    mov rax, 0x8000000000000000
    cqo
    mov rcx, -1
3:  idiv rcx
    jmp bad
2:  cmp qword ptr [LAST_VECTOR], 0
    jne bad
    cmp qword ptr [LAST_RIP], rbx
    jne bad
    mov rcx, 0x8000000000000000
    cmp rax, rcx
    jne bad
    cmp qword ptr [FAULTS], 2
    jne bad
    jmp pass
bad:
    mov al, 2
    jmp fail
