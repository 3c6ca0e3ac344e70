# #BP (vector 3): INT3 is a trap, so the saved RIP is the instruction after it; INT 3
# (CD 03) behaves the same.
.include "lib/long.inc"
test_main:
    lea r15, [rip + 1f]
    int3
2:  jmp bad
1:  cmp qword ptr [LAST_VECTOR], 3
    jne bad
    lea rax, [rip + 2b]
    cmp qword ptr [LAST_RIP], rax
    jne bad
    lea r15, [rip + 3f]
    .byte 0xcd, 0x03
4:  jmp bad
3:  lea rax, [rip + 4b]
    cmp qword ptr [LAST_RIP], rax
    jne bad
    jmp pass
bad:
    mov al, 2
    jmp fail
