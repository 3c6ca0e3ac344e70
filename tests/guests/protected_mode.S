# 32-bit protected mode: descriptor-load faults (#GP past the GDT limit, #NP on a
# not-present segment, #GP on an SS of the wrong privilege), 32-bit paging with 4 MiB pages
# and a #PF with CR2, IRET to ring 3, a far CALL from ring 3 through a call gate with
# parameters and RETF back, #GP through a DPL-0 gate from ring 3, and INT n through a DPL-3
# gate with the stack switched to the TSS's SS0:ESP0.
.intel_syntax noprefix

.set TSS, 0x20000
.set IDT, 0x30000
.set PD, 0x40000
.set PT, 0x41000
.set LAST_VECTOR, 0x500
.set LAST_ERROR, 0x504
.set LAST_CR2, 0x508
.set RESUME, 0x50c
.set SCRATCH, 0x510

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
    .byte 0x66, 0xea                # jmp far 0x08:pm32
    .long pm32
    .word 0x08

.code32
pm32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x80000

    mov dword ptr [TSS + 4], 0x90000  # ESP0
    mov dword ptr [TSS + 8], 0x10     # SS0
    mov word ptr [TSS + 0x66], 0x68
    mov ax, 0x28
    ltr ax

    mov dl, 0x8e
    mov edi, 13
    mov esi, offset gp_handler
    call set_gate
    mov edi, 11
    mov esi, offset np_handler
    call set_gate
    mov edi, 14
    mov esi, offset pf_handler
    call set_gate
    mov edi, 0x41
    mov esi, offset fail
    call set_gate                    # DPL 0: INT 0x41 from ring 3 raises #GP
    mov dl, 0xee
    mov edi, 0x40
    mov esi, offset int40_handler
    call set_gate
    mov edi, 0x42
    mov esi, offset fail
    call set_gate
    lidt [idt_desc]

    # 1. A selector past the GDT limit: #GP(selector).
    mov dword ptr [RESUME], offset 2f
    mov ax, 0x80
    mov fs, ax
    jmp fail
2:  cmp dword ptr [LAST_VECTOR], 13
    jne fail
    cmp dword ptr [LAST_ERROR], 0x80
    jne fail

    # 2. A not-present data segment: #NP(selector).
    mov dword ptr [RESUME], offset 2f
    mov ax, 0x30
    mov gs, ax
    jmp fail
2:  cmp dword ptr [LAST_VECTOR], 11
    jne fail
    cmp dword ptr [LAST_ERROR], 0x30
    jne fail

    # 3. SS must have DPL = CPL: a ring-3 data segment is refused with #GP(selector).
    mov dword ptr [RESUME], offset 2f
    mov ax, 0x23
    mov ss, ax
    jmp fail
2:  cmp dword ptr [LAST_ERROR], 0x20
    jne fail

    # 4. 32-bit paging: four 4 MiB user pages, then a page table with nothing present.
    mov edi, PD
    xor eax, eax
    mov ecx, 2048
    cld
    rep stosd
    mov dword ptr [PD + 0], 0x00000087
    mov dword ptr [PD + 4], 0x00400087
    mov dword ptr [PD + 8], 0x00800087
    mov dword ptr [PD + 12], 0x00c00087
    mov dword ptr [PD + 16], PT + 7
    mov eax, cr4
    or eax, 0x10                     # PSE
    mov cr4, eax
    mov eax, PD
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    mov dword ptr [RESUME], offset 2f
    mov eax, dword ptr [0x01003000]
    jmp fail
2:  cmp dword ptr [LAST_VECTOR], 14
    jne fail
    cmp dword ptr [LAST_ERROR], 0
    jne fail
    cmp dword ptr [LAST_CR2], 0x01003000
    jne fail
    # Map it and read through it.
    mov dword ptr [PT + 3 * 4], 0x00005007
    mov dword ptr [0x5000], 0xabcd
    cmp dword ptr [0x01003000], 0xabcd
    jne fail

    # 5. IRET to ring 3.
    mov dword ptr [RESUME], offset user_after_gp
    push 0x23                        # SS
    push 0x70000                     # ESP
    push 0x2                         # EFLAGS
    push 0x1b                        # CS
    push offset user_code            # EIP
    iretd

user_code:
    mov ax, cs
    cmp ax, 0x1b
    jne user_fail
    # DS (DPL 0) was nulled by the return to ring 3.
    mov ax, ds
    cmp ax, 0
    jne user_fail
    mov ax, 0x23
    mov ds, ax
    # A far call through a DPL-3 call gate into ring 0, with two dword parameters.
    push 0x1111
    push 0x2222
    .byte 0x9a                       # call far 0x3b:0 (the offset comes from the gate)
    .long 0
    .word 0x3b
    cmp eax, 0x600d
    jne user_fail
    cmp esp, 0x70000
    jne user_fail
    mov ax, cs
    cmp ax, 0x1b
    jne user_fail
    int 0x41
    jmp user_fail
user_after_gp:
    mov ax, 0x23
    mov ds, ax
    cmp dword ptr [LAST_VECTOR], 13
    jne user_fail
    cmp dword ptr [LAST_ERROR], 0x41 * 8 + 2
    jne user_fail
    int 0x40
user_fail:
    int 0x42

# Reached through the call gate: CPL 0 on the TSS stack, parameters copied in order.
gate_handler:
    mov ax, cs
    cmp ax, 0x08
    jne fail
    cmp esp, 0x90000 - 24
    jne fail
    cmp dword ptr [esp + 4], 0x1b
    jne fail
    cmp dword ptr [esp + 8], 0x2222
    jne fail
    cmp dword ptr [esp + 12], 0x1111
    jne fail
    cmp dword ptr [esp + 16], 0x70000 - 8
    jne fail
    cmp dword ptr [esp + 20], 0x23
    jne fail
    mov eax, 0x600d
    retf 8

int40_handler:
    mov dword ptr [SCRATCH], esp
    mov ax, ss
    cmp ax, 0x10
    jne fail
    cmp dword ptr [SCRATCH], 0x90000 - 20
    jne fail
    cmp dword ptr [0x90000 - 16], 0x1b   # saved CS
    jne fail
    cmp dword ptr [0x90000 - 8], 0x70000 # saved ESP
    jne fail
    cmp dword ptr [0x90000 - 4], 0x23    # saved SS
    jne fail
    mov al, 'P'
    out 0xe9, al
    mov al, '\n'
    out 0xe9, al
    mov al, 0
    out 0xf4, al
    hlt
fail:
    mov al, 1
    out 0xf4, al
    hlt

# Faults record vector, error code and CR2, then resume at [RESUME].
gp_handler:
    push 13
    jmp common
np_handler:
    push 11
    jmp common
pf_handler:
    push 14
common:
    pop dword ptr [LAST_VECTOR]
    pop dword ptr [LAST_ERROR]
    push eax
    mov eax, cr2
    mov dword ptr [LAST_CR2], eax
    mov eax, dword ptr [RESUME]
    mov dword ptr [esp + 4], eax
    pop eax
    iretd

# set_gate(edi = vector, esi = handler, dl = type/DPL byte)
set_gate:
    lea eax, [IDT + edi * 8]
    mov word ptr [eax], si
    mov word ptr [eax + 2], 0x08
    mov byte ptr [eax + 4], 0
    mov byte ptr [eax + 5], dl
    shr esi, 16
    mov word ptr [eax + 6], si
    ret

.align 8
gdt:
    .quad 0
    .quad 0x00cf9a000000ffff        # 0x08 ring-0 code
    .quad 0x00cf92000000ffff        # 0x10 ring-0 data
    .quad 0x00cffa000000ffff        # 0x18 ring-3 code
    .quad 0x00cff2000000ffff        # 0x20 ring-3 data
    .word 0x67, 0x0000              # 0x28 32-bit TSS at 0x20000
    .byte 0x02, 0x89, 0x00, 0x00
    .quad 0x00cf12000000ffff        # 0x30 data, not present
    .word gate_handler, 0x08        # 0x38 32-bit call gate, DPL 3, 2 parameters
    .byte 2, 0xec
    .word 0
gdt_end:
gdt_desc:
    .word gdt_end - gdt - 1
    .long gdt
idt_desc:
    .word 256 * 8 - 1
    .long IDT
