# Instructions the JIT translates inline beyond plain ALU code, each with the results the
# interpreter gives (the slice test compares both engines' state every few instructions):
# RDTSC counts retired instructions, DIV/IDIV including a 128-bit dividend and a negative
# one, CMPXCHG matching and not (a register destination is written only on a match), LOCK
# XADD, BT/BTS/BTR/BTC, BSF/BSR of zero and not, BSWAP, CDQE/CQO, the SSE string idiom,
# and INC at the start of a block reading the carry left lazily by the previous block's ADD,
# SUB, ADC, SBB, logic op or INC, or leaving it for the next block.
.include "lib/long.inc"
.set DATA, 0x300000
test_main:
    # RDTSC: four instructions apart, four nanoseconds apart.
    rdtsc
    mov r8, rax
    nop
    nop
    rdtsc
    sub rax, r8
    cmp rax, 4
    jne bad
    # DIV with RDX:RAX wider than 64 bits (redone in the interpreter) and IDIV.
    mov rdx, 1
    mov rax, 0
    mov rcx, 4
    div rcx                         # 2^64 / 4
    mov r9, 0x4000000000000000
    cmp rax, r9
    jne bad
    mov rax, -100
    cqo
    mov rcx, 7
    idiv rcx
    cmp rax, -14
    jne bad
    cmp rdx, -2
    jne bad
    mov eax, 1000
    xor edx, edx
    mov ecx, 3
    div ecx
    cmp eax, 333
    jne bad
    cmp edx, 1
    jne bad
    # CMPXCHG: a match writes the destination, a mismatch loads RAX (a 32-bit register
    # destination keeps its upper half).
    mov rbx, 0xffffffff00000005
    mov eax, 5
    mov ecx, 9
    cmpxchg ebx, ecx
    jne bad
    mov r9, 0x0000000000000009
    cmp rbx, r9
    jne bad
    mov rbx, 0xffffffff00000005
    mov eax, 6
    cmpxchg ebx, ecx
    je bad
    mov r9, 0xffffffff00000005
    cmp rbx, r9
    jne bad
    cmp rax, 5
    jne bad
    mov qword ptr [DATA], 40
    mov eax, 40
    mov ecx, 41
    lock cmpxchg [DATA], rcx
    jne bad
    cmp qword ptr [DATA], 41
    jne bad
    # LOCK XADD.
    mov ecx, 2
    lock xadd [DATA], rcx
    cmp rcx, 41
    jne bad
    cmp qword ptr [DATA], 43
    jne bad
    # Bit tests and scans.
    mov eax, 0x10
    bt eax, 4
    jnc bad
    mov ecx, 36                     # taken modulo 32
    bts eax, ecx
    cmp eax, 0x10
    jne bad
    btr eax, 4
    jnc bad
    btc eax, 31
    cmp eax, 0x80000000
    jne bad
    mov ebx, 0x1234
    xor ecx, ecx
    bsf ebx, ecx                    # zero source: ZF set, destination kept
    jnz bad
    cmp ebx, 0x1234
    jne bad
    mov ecx, 0x00f0
    bsf ebx, ecx
    cmp ebx, 4
    jne bad
    bsr ebx, ecx
    cmp ebx, 7
    jne bad
    # BSWAP, CDQE.
    mov rax, 0x0102030405060708
    bswap rax
    mov r9, 0x0807060504030201
    cmp rax, r9
    jne bad
    mov eax, 0x80000000
    cdqe
    mov r9, 0xffffffff80000000
    cmp rax, r9
    jne bad
    # The SSE string idiom: find the zero byte of a 16-byte chunk.
    mov rdi, DATA + 0x100
    mov rax, 0x4847464544434241
    mov [rdi], rax
    mov rax, 0x0050004e4d4c4b4a
    mov [rdi + 8], rax
    pxor xmm0, xmm0
    movdqa xmm1, [rdi]
    pcmpeqb xmm1, xmm0
    pmovmskb eax, xmm1
    bsf eax, eax
    cmp eax, 13
    jne bad
    # The carry across a block boundary (each JO to the next instruction ends a block, where
    # a JMP would be followed; INC keeps CF, ADC reads it).
    xor ecx, ecx
    mov eax, -1
    add eax, 1                      # CF = 1 (ADD)
    jo 1f
1:  inc ebx
    adc ecx, 0                      # ecx = 1
    mov eax, 0
    cmp eax, 1                      # CF = 1 (SUB)
    jo 1f
1:  inc ebx
    adc ecx, 0                      # ecx = 2
    stc
    mov eax, 5
    adc eax, -6                     # 5 + 0xffffffff... + 1 = 0, CF = 1 (ADC)
    jo 1f
1:  inc ebx
    adc ecx, 0                      # ecx = 3
    stc
    mov eax, 0
    sbb eax, 0                      # 0 - 0 - 1, CF = 1 (SBB)
    jo 1f
1:  inc ebx
    adc ecx, 0                      # ecx = 4
    stc
    or eax, eax                     # CF = 0 (logic)
    jo 1f
1:  inc ebx
    adc ecx, 0                      # ecx = 4
    stc
    inc eax                         # CF kept = 1 (INC)
    jo 1f
1:  inc ebx
    adc ecx, 0                      # ecx = 5
    cmp ecx, 5
    jne bad
    # An INC whose kept carry (of an ADD, so not yet in the RFLAGS bits, which hold a
    # clear CF) is only stored at its block's exit, then read by the next block.
    clc
    jo 1f
1:  mov eax, -1
    add eax, 1                      # CF = 1
    jo 1f
1:  inc ebx
    jo 1f
1:  adc ecx, 0                      # ecx = 6
    stc
    jo 1f
1:  mov eax, 0
    add eax, 1                      # CF = 0
    jo 1f
1:  dec ebx
    jc bad
    jo 1f
1:  adc ecx, 0                      # ecx = 6
    cmp ecx, 6
    jne bad
    # INC at a block's start, its carry that of the previous block's ADD, then a followed
    # JMP and a CMP that faults: the fault's RFLAGS (restored by the handler's IRETQ) hold
    # the kept carry, though the CMP would have replaced it.
    lea r15, [rip + 2f]
    mov rsi, 0x40000000             # above the mapped gigabyte
    mov eax, -1
    add eax, 1                      # CF = 1
    jo 1f
1:  inc ebx
    jmp 1f
1:  cmp byte ptr [rsi], 0
    jmp bad
2:  jnc bad
    cmp qword ptr [LAST_VECTOR], 14
    jne bad
    # The same with DEC and a faulting SHR by a constant, which replaces all six flags too.
    lea r15, [rip + 2f]
    mov eax, -1
    add eax, 1                      # CF = 1
    jo 1f
1:  dec ebx
    shr qword ptr [rsi], 3
    jmp bad
2:  jnc bad
    jmp pass
bad:
    mov al, 2
    jmp fail
