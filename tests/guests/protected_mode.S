# 32-bit protected mode: descriptor-load faults (#GP past the GDT limit, #NP on a
# not-present segment, #GP on an SS of the wrong privilege), 32-bit paging with 4 MiB pages
# and a #PF with CR2, IRET to ring 3 (DS nulled), a far CALL from ring 3 through a call gate
# with parameters and RETF back, #GP through a DPL-0 gate from ring 3, and INT n through a
# DPL-3 gate with the stack switched to the TSS's SS0:ESP0.
.include "lib/prot.inc"
.set PD, 0x40000
.set PT, 0x41000
.set SCRATCH, 0x600
test_main:
    mov dl, 0x8e
    mov edi, 0x41
    mov esi, offset bad
    call set_gate                    # DPL 0: INT 0x41 from ring 3 raises #GP
    mov dl, 0xee
    mov edi, 0x40
    mov esi, offset int40_handler
    call set_gate
    mov edi, 0x42
    mov esi, offset bad
    call set_gate
    # The call gate at 0x38: 32-bit, DPL 3, two parameters, to 0x08:gate_handler.
    mov eax, offset gate_handler
    mov word ptr [lib_gdt + 0x38], ax
    mov word ptr [lib_gdt + 0x3a], 0x08
    mov word ptr [lib_gdt + 0x3c], 0xec02
    shr eax, 16
    mov word ptr [lib_gdt + 0x3e], ax

    # 1. A selector past the GDT limit: #GP(selector).
    mov dword ptr [RESUME], offset 2f
    mov ax, 0x80
    mov fs, ax
    jmp bad
2:  cmp dword ptr [LAST_VECTOR], 13
    jne bad
    cmp dword ptr [LAST_ERROR], 0x80
    jne bad
    # 2. A not-present data segment: #NP(selector).
    mov dword ptr [RESUME], offset 2f
    mov ax, 0x30
    mov gs, ax
    jmp bad
2:  cmp dword ptr [LAST_VECTOR], 11
    jne bad
    cmp dword ptr [LAST_ERROR], 0x30
    jne bad
    # 3. SS must have DPL = CPL: a ring-3 data segment is refused with #GP(selector).
    mov dword ptr [RESUME], offset 2f
    mov ax, 0x23
    mov ss, ax
    jmp bad
2:  cmp dword ptr [LAST_ERROR], 0x20
    jne bad

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
    jmp bad
2:  cmp dword ptr [LAST_VECTOR], 14
    jne bad
    cmp dword ptr [LAST_ERROR], 0
    jne bad
    cmp dword ptr [LAST_CR2], 0x01003000
    jne bad
    mov dword ptr [PT + 3 * 4], 0x00005007
    mov dword ptr [0x5000], 0xabcd
    cmp dword ptr [0x01003000], 0xabcd
    jne bad

    # 5. IRET to ring 3.
    mov dword ptr [RESUME], offset user_after_gp
    push 0x23                        # SS
    push USER_STACK                  # ESP
    push 0x2                         # EFLAGS
    push 0x1b                        # CS
    push offset user_code            # EIP
    iretd

user_code:
    mov ax, cs
    cmp ax, 0x1b
    jne user_bad
    mov ax, ds                       # DS (DPL 0) was nulled by the return to ring 3
    cmp ax, 0
    jne user_bad
    mov ax, 0x23
    mov ds, ax
    push 0x1111
    push 0x2222
    .byte 0x9a                       # call far 0x3b:0 (the offset comes from the gate)
    .long 0
    .word 0x3b
    cmp eax, 0x600d
    jne user_bad
    cmp esp, USER_STACK
    jne user_bad
    int 0x41
    jmp user_bad
user_after_gp:
    cmp dword ptr [LAST_VECTOR], 13
    jne user_bad
    cmp dword ptr [LAST_ERROR], 0x41 * 8 + 2
    jne user_bad
    int 0x40
user_bad:
    int 0x42

# Reached through the call gate: CPL 0 on the TSS stack, parameters copied in order.
gate_handler:
    mov ax, cs
    cmp ax, 0x08
    jne bad
    cmp esp, 0x90000 - 24
    jne bad
    cmp dword ptr [esp + 4], 0x1b
    jne bad
    cmp dword ptr [esp + 8], 0x2222
    jne bad
    cmp dword ptr [esp + 12], 0x1111
    jne bad
    cmp dword ptr [esp + 16], USER_STACK - 8
    jne bad
    cmp dword ptr [esp + 20], 0x23
    jne bad
    mov eax, 0x600d
    retf 8

int40_handler:
    mov dword ptr [SCRATCH], esp
    mov ax, ss
    cmp ax, 0x10
    jne bad
    cmp dword ptr [SCRATCH], 0x90000 - 20
    jne bad
    cmp dword ptr [0x90000 - 16], 0x1b        # saved CS
    jne bad
    cmp dword ptr [0x90000 - 8], USER_STACK   # saved ESP
    jne bad
    cmp dword ptr [0x90000 - 4], 0x23         # saved SS
    jne bad
    jmp pass
bad:
    mov al, 2
    jmp fail
