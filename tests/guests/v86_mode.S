# Virtual-8086 mode: IRETD from ring 0 into VM86, paragraph segments inside it, CLI and
# PUSHF faulting with #GP at IOPL 0, the ring-0 handler seeing the VM86 frame (EFLAGS.VM and
# the saved data segments) with its own data segments nulled, and IRETD back into VM86.
.intel_syntax noprefix

.set TSS, 0x20000
.set IDT, 0x30000
.set COUNT, 0x500

.code16
.globl start
start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7c00
    lgdt [gdt_desc]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    .byte 0x66, 0xea
    .long pm32
    .word 0x08

.code32
pm32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x80000
    mov dword ptr [TSS + 4], 0x90000
    mov dword ptr [TSS + 8], 0x10
    mov word ptr [TSS + 0x66], 0x68
    mov ax, 0x18
    ltr ax
    mov eax, offset gp_handler       # 32-bit interrupt gate for #GP
    mov word ptr [IDT + 13 * 8], ax
    mov word ptr [IDT + 13 * 8 + 2], 0x08
    mov word ptr [IDT + 13 * 8 + 4], 0x8e00
    shr eax, 16
    mov word ptr [IDT + 13 * 8 + 6], ax
    lidt [idt_desc]
    mov dword ptr [COUNT], 0

    push 0                           # GS
    push 0                           # FS
    push 0x1000                      # DS
    push 0                           # ES
    push 0                           # SS
    push 0x7000                      # ESP
    push 0x20002                     # EFLAGS: VM, IOPL 0
    push 0                           # CS
    push offset v86_code             # EIP
    iretd

.code16
v86_code:
    mov byte ptr [0], 0x77           # DS = 0x1000: linear 0x10000
    cli                              # #GP at IOPL 0; the handler skips it
    mov ax, ds
    cmp ax, 0x1000
    jne v86_fail
    pushf                            # #GP again: the handler finishes the test
v86_fail:
    hlt                              # privileged in VM86: #GP, which the handler fails on

.code32
gp_handler:
    mov ebx, ds                      # must be null: delivery out of VM86 nulls it
    mov ax, 0x10
    mov ds, ax
    test dword ptr [esp + 12], 0x20000
    jz fail
    cmp dword ptr [esp + 28], 0x1000 # saved DS
    jne fail
    cmp dword ptr [esp + 20], 0      # saved SS
    jne fail
    cmp ebx, 0
    jne fail
    mov eax, esp
    cmp eax, 0x90000 - 40
    jne fail
    inc dword ptr [COUNT]
    cmp dword ptr [COUNT], 1
    je 1f
    cmp dword ptr [COUNT], 2
    jne fail
    mov eax, dword ptr [esp + 4]     # the faulting PUSHF
    cmp eax, offset v86_fail - 1
    jne fail
    cmp byte ptr [0x10000], 0x77
    jne fail
    mov al, 'P'
    out 0xe9, al
    mov al, '\n'
    out 0xe9, al
    mov al, 0
    out 0xf4, al
    hlt
1:  add dword ptr [esp + 4], 1       # skip the 1-byte CLI
    add esp, 4                       # drop the error code
    iretd
fail:
    mov al, 1
    out 0xf4, al
    hlt

.align 8
gdt:
    .quad 0
    .quad 0x00cf9a000000ffff        # 0x08 ring-0 code
    .quad 0x00cf92000000ffff        # 0x10 ring-0 data
    .word 0x67, 0x0000              # 0x18 32-bit TSS at 0x20000
    .byte 0x02, 0x89, 0x00, 0x00
gdt_end:
gdt_desc:
    .word gdt_end - gdt - 1
    .long gdt
idt_desc:
    .word 256 * 8 - 1
    .long IDT
