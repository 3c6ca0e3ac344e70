# Runs of PUSHes and POPs, which translated code probes the TLB for once per run: runs that
# fit in one 4 KiB page and runs that straddle a page boundary (then each instruction is
# translated alone), a run popping into one register twice, a run of POPs whose third
# reaches unmapped memory (the fault must leave the first two done and nothing after), and
# POPs with the RET after them (a function's epilogue), across the boundary and faulting.
.include "lib/long.inc"
# A 4 KiB boundary inside a mapped 2 MiB page.
.set BOUNDARY, 0x301000
# The start of a 2 MiB page this program unmaps (its PD entry cleared), 18 MiB into RAM.
.set END_OF_MAP, 0x1200000
# RSP back at R13, RBX and RBP holding what was pushed.
.macro rsp_rbx_rbp_restored
    cmp rsp, r13
    jne bad
    mov rax, 0x1111111111111111
    cmp rbx, rax
    jne bad
    mov rax, 0x2222222222222222
    cmp rbp, rax
    jne bad
.endm
# RSP at END_OF_MAP - 16, below two slots holding 0x55 and 0x66 (RDX and R8 cleared
# to pop them).
.macro two_slots_below_end_of_map
    mov rsp, END_OF_MAP - 16
    mov qword ptr [rsp], 0x55
    mov qword ptr [rsp + 8], 0x66
    xor edx, edx
    xor r8d, r8d
.endm
# A #PF at END_OF_MAP by the instruction at `site`, after RDX and R8 were popped.
.macro popped_two_then_faulted site
    cmp qword ptr [LAST_VECTOR], 14
    jne bad
    mov rax, END_OF_MAP
    cmp [LAST_CR2], rax
    jne bad
    cmp rsp, rax
    jne bad
    lea rax, [rip + \site]
    cmp [LAST_RIP], rax
    jne bad
    cmp rdx, 0x55
    jne bad
    cmp r8, 0x66
    jne bad
.endm
test_main:
    mov r12, rsp
    # 1. 600 rounds; the stack top moves over BOUNDARY - 16 .. BOUNDARY + 40, so a run of
    #    four 8-byte slots lies below the boundary, straddles it, or lies above it.
    mov ecx, 600
1:
    mov eax, ecx
    and eax, 7
    lea rsp, [BOUNDARY - 16 + rax * 8]
    mov r13, rsp
    mov rbx, 0x1111111111111111
    mov rbp, 0x2222222222222222
    mov rsi, 0x3333333333333333
    mov rdi, 0x4444444444444444
    push rbx
    push rbp
    push rsi
    push rdi
    lea rax, [r13 - 32]
    cmp rsp, rax
    jne bad
    mov rax, 0x4444444444444444
    cmp [rsp], rax
    jne bad
    mov rax, 0x1111111111111111
    cmp [rsp + 24], rax
    jne bad
    xor ebx, ebx
    xor ebp, ebp
    xor esi, esi
    xor edi, edi
    pop rdi
    pop rsi
    pop rbp
    pop rbx
    rsp_rbx_rbp_restored
    mov rax, 0x3333333333333333
    cmp rsi, rax
    jne bad
    mov rax, 0x4444444444444444
    cmp rdi, rax
    jne bad
    # Two POPs into one register: the second (the slot pushed first) wins.
    push rbx
    push rbp
    pop rdx
    pop rdx
    cmp rdx, rbx
    jne bad
    cmp rsp, r13
    jne bad
    dec ecx
    jnz 1b
    # 2. Four POPs from END_OF_MAP - 16: the third faults. Twice, the second time with the
    #    block translated.
    mov qword ptr [PD + 8 * (END_OF_MAP >> 21)], 0
    invlpg [END_OF_MAP]
    mov ecx, 2
2:
    two_slots_below_end_of_map
    mov r9, 0x77
    mov r10, 0x88
    lea r15, [rip + 3f]
    pop rdx
    pop r8
pop_faulting:
    pop r9
    pop r10
    jmp bad
3:
    popped_two_then_faulted pop_faulting
    cmp r9, 0x77
    jne bad
    cmp r10, 0x88
    jne bad
    dec ecx
    jnz 2b
    # 3. A function's epilogue, POPs and the RET after them, is one run too: 600 calls with
    #    the return address moving over BOUNDARY - 8 .. BOUNDARY + 48, so the run's three
    #    slots lie below the boundary, straddle it, or lie above it.
    mov ecx, 600
4:
    mov eax, ecx
    and eax, 7
    lea rsp, [BOUNDARY + rax * 8]
    mov r13, rsp
    mov rbx, 0x1111111111111111
    mov rbp, 0x2222222222222222
    call push_and_pop
    rsp_rbx_rbp_restored
    dec ecx
    jnz 4b
    # 4. POP, POP, RET from END_OF_MAP - 16: the RET faults, with both POPs done. Twice,
    #    the second time with the block translated.
    mov ecx, 2
5:
    two_slots_below_end_of_map
    lea r15, [rip + 6f]
    pop rdx
    pop r8
ret_faulting:
    ret
6:
    popped_two_then_faulted ret_faulting
    dec ecx
    jnz 5b
    xor r15d, r15d
    mov rsp, r12
    jmp pass
# Saves RBX and RBP, clobbers them and restores them: one block from PUSH to RET.
push_and_pop:
    push rbp
    push rbx
    xor ebx, ebx
    xor ebp, ebp
    pop rbx
    pop rbp
    ret
bad:
    mov rsp, r12
    mov al, 2
    jmp fail
