# #NM (vector 7): x87 and SSE instructions with CR0.TS set; CLTS clears it and the same
# instructions then run.
.include "lib/long.inc"
test_main:
    mov rax, cr0
    or rax, 8                        # TS
    mov cr0, rax
    lea r15, [rip + 1f]
    fld1
    jmp bad
1:  cmp qword ptr [LAST_VECTOR], 7
    jne bad
    lea r15, [rip + 2f]
    addps xmm0, xmm1
    jmp bad
2:  cmp qword ptr [LAST_VECTOR], 7
    jne bad
    clts
    xor r15, r15
    fld1
    addps xmm0, xmm1
    cmp qword ptr [FAULTS], 2
    jne bad
    jmp pass
bad:
    mov al, 2
    jmp fail
