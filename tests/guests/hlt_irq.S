# External interrupts in long mode: held off while IF = 0, delivered through an interrupt
# gate (IF cleared in the handler, restored by IRETQ), and waking the CPU from HLT.
.include "lib/long.inc"
.set COUNT, 0x600
.set HANDLER_IF, 0x608
test_main:
    mov edi, 0x20
    lea rsi, [rip + irq_handler]
    mov edx, 0x8e
    xor ecx, ecx
    call set_gate
    mov qword ptr [COUNT], 0
    mov dx, IRQ_INJECT
    mov al, 0x20
    out dx, al
    nop
    cmp qword ptr [COUNT], 0
    jne bad
    sti
    hlt                              # the pending interrupt is taken after STI's shadow
    cmp qword ptr [COUNT], 1
    jne bad
    cmp qword ptr [HANDLER_IF], 0
    jne bad
    pushfq
    pop rax
    test eax, 0x200
    jz bad
    # The classic idle idiom: with IF clear, raise the interrupt, then STI; HLT. The STI
    # shadow lets HLT start, and the interrupt wakes it.
    cli
    mov al, 0x20
    out dx, al
    sti
    hlt
    cmp qword ptr [COUNT], 2
    jne bad
    jmp pass
bad:
    mov al, 2
    jmp fail
irq_handler:
    push rax
    pushfq
    pop rax
    and eax, 0x200
    mov qword ptr [HANDLER_IF], rax
    inc qword ptr [COUNT]
    pop rax
    iretq
