# #TS (vector 10): delivery through an IST gate reads the IST pointer from the TSS; with a
# TSS whose limit stops short of it, the read raises #TS with the TSS selector.
.include "lib/long.inc"
test_main:
    mov edi, 0x40
    lea rsi, [rip + never]
    mov edx, 0x8e
    mov ecx, 1                       # IST1 at TSS offset 36: past the short limit
    call set_gate
    mov ax, 0x48
    ltr ax
    lea r15, [rip + 1f]
    int 0x40
    jmp bad
1:  cmp qword ptr [LAST_VECTOR], 10
    jne bad
    cmp qword ptr [LAST_ERROR], 0x48
    jne bad
    str ax
    cmp ax, 0x48
    jne bad
    jmp pass
never:
bad:
    mov al, 2
    jmp fail
