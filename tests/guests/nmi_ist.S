# NMI: delivered even with IF clear, through a gate with IST2, onto that stack; the frame
# holds the interrupted RIP.
.include "lib/long.inc"
.set SEEN_RSP, 0x600
test_main:
    mov qword ptr [TSS + 44], 0xb0000   # IST2
    mov edi, 2
    lea rsi, [rip + nmi_handler]
    mov edx, 0x8e
    mov ecx, 2
    call set_gate
    cli
    mov qword ptr [SEEN_RSP], 0
    mov dx, IRQ_INJECT + 1
    out dx, al                       # NMI
    nop
    cmp qword ptr [SEEN_RSP], 0xb0000 - 40
    jne bad
    jmp pass
bad:
    mov al, 2
    jmp fail
nmi_handler:
    mov qword ptr [SEEN_RSP], rsp
    iretq
