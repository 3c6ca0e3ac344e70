# An interrupt made pending by port I/O is taken right after that instruction, before the
# next one, also when the code is cold and the next block lies on the same page (the
# engine goes on from one cold block to the next without the dispatcher only after blocks
# that end quietly; OUT does not).
.include "lib/long.inc"
.set COUNT, 0x600
.set SAVED_RIP, 0x608
test_main:
    mov edi, 0x20
    lea rsi, [rip + irq_handler]
    mov edx, 0x8e
    xor ecx, ecx
    call set_gate
    mov qword ptr [COUNT], 0
    mov dx, IRQ_INJECT
    sti
    mov ecx, 300
raise:
    mov al, 0x20
    out dx, al
after_out:
    jmp check                        # a block of its own, on the same page
check:
    lea rax, [rip + after_out]
    cmp qword ptr [SAVED_RIP], rax
    jne bad
    mov qword ptr [SAVED_RIP], 0
    dec ecx
    jnz raise
    cmp qword ptr [COUNT], 300
    jne bad
    jmp pass
bad:
    mov al, 2
    jmp fail
irq_handler:
    push rax
    mov rax, [rsp + 8]               # the interrupted RIP
    mov qword ptr [SAVED_RIP], rax
    inc qword ptr [COUNT]
    pop rax
    iretq
