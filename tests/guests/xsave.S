# XSAVE round trip: CPUID reports XSAVE and, once CR4.OSXSAVE is set, OSXSAVE and a 576-byte
# area; XSETBV enables x87|SSE; XSAVE stores XMM and x87 state with XSTATE_BV; XRSTOR brings
# them back; XRSTOR of a component absent from XSTATE_BV puts it in its initial state.
.include "lib/long.inc"
.set AREA, 0x40000
test_main:
    mov eax, 1
    cpuid
    test ecx, 1 << 26
    jz bad
    mov rax, cr4
    or rax, 1 << 18
    mov cr4, rax
    mov eax, 1
    cpuid
    test ecx, 1 << 27
    jz bad
    mov eax, 0xd
    xor ecx, ecx
    cpuid
    cmp ebx, 576
    jne bad
    xor ecx, ecx
    mov eax, 3
    xor edx, edx
    xsetbv
    mov rax, 0x1122334455667788
    movq xmm5, rax
    fninit
    fld1
    mov eax, 3
    xor edx, edx
    xsave [AREA]
    cmp qword ptr [AREA + 512], 3
    jne bad
    pxor xmm5, xmm5
    fninit
    xrstor [AREA]
    movq rax, xmm5
    mov rcx, 0x1122334455667788
    cmp rax, rcx
    jne bad
    fld1
    fcomip st, st(1)                 # ST(1) is the restored 1.0
    jne bad
    # XSTATE_BV without SSE: XMM registers return to zero.
    mov qword ptr [AREA + 512], 1
    mov eax, 3
    xor edx, edx
    xrstor [AREA]
    movq rax, xmm5
    test rax, rax
    jnz bad
    jmp pass
bad:
    mov al, 2
    jmp fail
