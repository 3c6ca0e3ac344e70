# 16-byte SSE accesses and XMM values in translated code, run four times over so the loop
# is translated: MOVDQA at the last aligned slot of a page hits; MOVDQA loads and stores
# off a 16-byte boundary raise #GP and leave memory alone (the alignment test is folded
# into the TLB tag test); an aligned MOVDQA above the mapped gigabyte raises #PF; an XMM
# register written by an interpreted instruction (PINSRW) is read afresh by the next
# translated one; and PXOR/PSUBB of a register with itself give zero whatever it held.
.include "lib/long.inc"
.set DATA, 0x301000
test_main:
    mov r12, 4
round:
    # Last aligned slot of the page before DATA, read back through another register.
    mov rdi, DATA - 16
    mov rax, 0x1111111122222222
    mov [rdi], rax
    mov rax, 0x3333333344444444
    mov [rdi + 8], rax
    movdqa xmm1, [rdi]
    movdqa [rdi + 0x20], xmm1           # DATA + 0x10: the next page
    mov rax, [DATA + 0x18]
    mov rbx, 0x3333333344444444
    cmp rax, rbx
    jne bad
    # A misaligned load: #GP, xmm2 unchanged.
    pxor xmm2, xmm2
    lea r15, [rip + 1f]
    movdqa xmm2, [rdi + 8]
    jmp bad
1:  cmp qword ptr [LAST_VECTOR], 13
    jne bad
    movq rax, xmm2
    test rax, rax
    jne bad
    # A misaligned store: #GP, memory unchanged.
    lea r15, [rip + 1f]
    movdqa [DATA + 0x48], xmm1
    jmp bad
1:  cmp qword ptr [LAST_VECTOR], 13
    jne bad
    cmp qword ptr [DATA + 0x48], 0
    jne bad
    # Aligned but unmapped: #PF with the address in CR2.
    lea r15, [rip + 1f]
    mov rsi, 0x40000010
    movdqa [rsi], xmm1
    jmp bad
1:  cmp qword ptr [LAST_VECTOR], 14
    jne bad
    cmp qword ptr [LAST_CR2], rsi
    jne bad
    # PINSRW (interpreted) between two translated uses of xmm1.
    movdqa xmm1, [rdi]
    mov eax, 0x5a5a
    pinsrw xmm1, eax, 0
    movdqa [DATA + 0x30], xmm1
    movzx eax, word ptr [DATA + 0x30]
    cmp eax, 0x5a5a
    jne bad
    # Zeroing idioms on registers holding something.
    movdqa xmm3, [rdi]
    pxor xmm3, xmm3
    movq rax, xmm3
    test rax, rax
    jne bad
    movdqa xmm4, [rdi]
    psubb xmm4, xmm4
    pmovmskb eax, xmm4
    movq rbx, xmm4
    or rax, rbx
    jne bad
    dec r12
    jnz round
    cmp qword ptr [FAULTS], 12
    jne bad
    jmp pass
bad:
    mov al, 2
    jmp fail
