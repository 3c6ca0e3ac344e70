# #XM (vector 19): an unmasked SSE zero-divide with CR4.OSXMMEXCPT; the destination is not
# written and MXCSR.ZE is set. With the exception masked the result is infinity.
.include "lib/long.inc"
.set CSR, 0x600
test_main:
    mov dword ptr [CSR], 0x1d80      # ZM clear
    ldmxcsr dword ptr [CSR]
    mov eax, 0x3f800000
    movd xmm0, eax
    xorps xmm1, xmm1
    lea r15, [rip + 1f]
    divss xmm0, xmm1
    jmp bad
1:  cmp qword ptr [LAST_VECTOR], 19
    jne bad
    movd eax, xmm0
    cmp eax, 0x3f800000
    jne bad
    stmxcsr dword ptr [CSR]
    test dword ptr [CSR], 4
    jz bad
    mov dword ptr [CSR], 0x1f80
    ldmxcsr dword ptr [CSR]
    divss xmm0, xmm1
    movd eax, xmm0
    cmp eax, 0x7f800000
    jne bad
    jmp pass
bad:
    mov al, 2
    jmp fail
