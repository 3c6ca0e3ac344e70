# #UD (vector 6): UD2, a LOCK prefix on a non-lockable instruction, SWAPGS is fine at CPL 0
# but SYSRET with EFER.SCE clear is #UD, and an opcode that does not exist.
.include "lib/long.inc"
test_main:
    lea r15, [rip + 1f]
    ud2
    jmp bad
1:  cmp qword ptr [LAST_VECTOR], 6
    jne bad
    lea r15, [rip + 2f]
    .byte 0xf0, 0x89, 0xc3           # lock mov ebx, eax
    jmp bad
2:  cmp qword ptr [LAST_VECTOR], 6
    jne bad
    lea r15, [rip + 3f]
    .byte 0x0f, 0x04                 # undefined
    jmp bad
3:  cmp qword ptr [LAST_VECTOR], 6
    jne bad
    mov ecx, 0xc0000080              # clear EFER.SCE, then SYSRETQ is #UD
    rdmsr
    and eax, ~1
    wrmsr
    lea r15, [rip + 4f]
    sysretq
    jmp bad
4:  cmp qword ptr [LAST_VECTOR], 6
    jne bad
    cmp qword ptr [FAULTS], 4
    jne bad
    jmp pass
bad:
    mov al, 2
    jmp fail
