# #DB (vector 1): the single-step trap after an instruction that began with TF set (RIP is
# the next instruction, DR6.BS set, no trap after the POPF that set TF), and INT1 (ICEBP).
.include "lib/long.inc"
.set DB_COUNT, 0x600
test_main:
    mov edi, 1
    lea rsi, [rip + db_handler]
    mov edx, 0x8e
    xor ecx, ecx
    call set_gate
    mov qword ptr [DB_COUNT], 0
    pushfq
    or qword ptr [rsp], 0x100        # TF
    popfq                            # TF was clear when POPF began: no trap here
    mov eax, 5                       # traps after this instruction
1:  cmp qword ptr [DB_COUNT], 1
    jne bad
    lea rax, [rip + 1b]
    cmp qword ptr [LAST_RIP], rax
    jne bad
    mov rax, dr6
    test eax, 0x4000
    jz bad
    .byte 0xf1                       # INT1
2:  cmp qword ptr [DB_COUNT], 2
    jne bad
    lea rax, [rip + 2b]
    cmp qword ptr [LAST_RIP], rax
    jne bad
    jmp pass
bad:
    mov al, 2
    jmp fail

# Records the return RIP and clears TF in the saved RFLAGS.
db_handler:
    push rax
    mov rax, qword ptr [rsp + 8]
    mov qword ptr [LAST_RIP], rax
    and qword ptr [rsp + 24], ~0x100
    inc qword ptr [DB_COUNT]
    pop rax
    iretq
