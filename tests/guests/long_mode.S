# Long mode from a boot sector: PAE paging with 2 MiB pages, LGDT/LIDT/LTR, #PF (not
# present and write-protect, CR2 and error codes, INVLPG), #GP on a non-canonical address,
# #UD, SYSRET to ring 3 and SYSCALL back, INT n from ring 3 through a DPL-3 gate onto an IST
# stack, #GP through a DPL-0 gate, and FS/GS bases with SWAPGS.
.intel_syntax noprefix

.set PML4, 0x10000
.set PDPT, 0x11000
.set PD, 0x12000
.set TSS, 0x20000
.set IDT, 0x30000
.set LAST_VECTOR, 0x500
.set LAST_ERROR, 0x508
.set LAST_CR2, 0x510
.set SCRATCH, 0x520

.code16
.globl start
start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7c00
    # Clear the page tables.
    mov ax, PML4 >> 4
    mov es, ax
    xor di, di
    xor eax, eax
    mov cx, 0x3000 / 4
    cld
    rep stosd
    mov dword ptr es:[0x0000], PDPT + 7
    mov dword ptr es:[0x1000], PD + 7
    # 512 user-accessible, writable 2 MiB pages: identity map of the first 1 GiB.
    mov di, 0x2000
    mov eax, 0x87
    mov cx, 512
1:  mov dword ptr es:[di], eax
    mov dword ptr es:[di+4], 0
    add eax, 0x200000
    add di, 8
    loop 1b

    lgdt [gdt_desc]
    mov eax, 0x220                  # PAE | OSFXSR
    mov cr4, eax
    mov eax, PML4
    mov cr3, eax
    mov ecx, 0xc0000080             # EFER: SCE | LME | NXE
    rdmsr
    or eax, 0x901
    wrmsr
    mov eax, cr0
    or eax, 0x80000001              # PG | PE
    mov cr0, eax
    .byte 0x66, 0xea                # jmp far 0x08:long64
    .long long64
    .word 0x08

.code64
long64:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov rsp, 0x80000

    # TSS: RSP0, IST1 (deliberately not 16-byte aligned), no I/O bitmap.
    mov qword ptr [TSS + 4], 0x90000
    mov qword ptr [TSS + 36], 0xa0008
    mov word ptr [TSS + 0x66], 0x68
    mov ax, 0x30
    ltr ax

    mov edi, 14
    lea rsi, [rip + pf_handler]
    mov edx, 0x8e
    xor ecx, ecx
    call set_gate
    mov edi, 13
    lea rsi, [rip + gp_handler]
    call set_gate
    mov edi, 6
    lea rsi, [rip + ud_handler]
    call set_gate
    mov edi, 0x41
    lea rsi, [rip + ud_handler]
    call set_gate                    # DPL 0: INT 0x41 from ring 3 must raise #GP
    mov edi, 0x40
    lea rsi, [rip + int40_handler]
    mov edx, 0xee                    # DPL 3
    mov ecx, 1                       # IST1
    call set_gate
    lidt [idt_desc]

    # 1. Not-present page: read at 1 GiB (PDPT[1] is empty).
    lea r15, [rip + 2f]
    mov rax, qword ptr [0x40000000]
    jmp fail
2:  cmp qword ptr [LAST_VECTOR], 14
    jne fail
    cmp qword ptr [LAST_ERROR], 0
    jne fail
    cmp qword ptr [LAST_CR2], 0x40000000
    jne fail

    # 2. Write to a read-only page with CR0.WP set; then make it writable again.
    and qword ptr [PD + 8], ~2
    invlpg [0x200000]
    mov rax, cr0
    or rax, 0x10000
    mov cr0, rax
    lea r15, [rip + 2f]
    mov byte ptr [0x200000], 1
    jmp fail
2:  cmp qword ptr [LAST_ERROR], 3
    jne fail
    or qword ptr [PD + 8], 2
    invlpg [0x200000]
    mov byte ptr [0x200000], 1
    cmp byte ptr [0x200000], 1
    jne fail

    # 3. Non-canonical address: #GP(0).
    lea r15, [rip + 2f]
    mov rbx, 0x8000000000000000
    mov rax, qword ptr [rbx]
    jmp fail
2:  cmp qword ptr [LAST_VECTOR], 13
    jne fail
    cmp qword ptr [LAST_ERROR], 0
    jne fail

    # 4. UD2.
    lea r15, [rip + 2f]
    ud2
2:  cmp qword ptr [LAST_VECTOR], 6
    jne fail

    # 5. FS and GS bases, SWAPGS.
    mov qword ptr [0x600], 0x1111
    mov qword ptr [0x700], 0x2222
    mov ecx, 0xc0000100
    mov eax, 0x600
    xor edx, edx
    wrmsr
    cmp qword ptr fs:[0], 0x1111
    jne fail
    mov ecx, 0xc0000101
    mov eax, 0x600
    wrmsr
    mov ecx, 0xc0000102
    mov eax, 0x700
    wrmsr
    swapgs
    cmp qword ptr gs:[0], 0x2222
    jne fail
    swapgs
    cmp qword ptr gs:[0], 0x1111
    jne fail

    # 6. SYSRET to ring 3; ring 3 tries a DPL-0 gate (#GP, handled, back in ring 3),
    #    then SYSCALL comes back to ring 0.
    mov ecx, 0xc0000081              # STAR: SYSRET base 0x18, SYSCALL CS 0x08
    xor eax, eax
    mov edx, 0x00180008
    wrmsr
    mov ecx, 0xc0000082              # LSTAR
    lea rax, [rip + syscall_entry]
    mov rdx, rax
    shr rdx, 32
    wrmsr
    mov ecx, 0xc0000084              # FMASK: IF
    mov eax, 0x200
    xor edx, edx
    wrmsr
    lea rcx, [rip + user_code]
    mov r11, 0x2
    mov rsp, 0x70000
    sysretq

user_code:
    mov ax, cs
    cmp ax, 0x2b
    jne user_fail
    lea r15, [rip + 2f]
    int 0x41
    jmp user_fail
2:  cmp qword ptr [LAST_ERROR], 0x41 * 8 + 2
    jne user_fail
    mov ax, cs
    cmp ax, 0x2b
    jne user_fail
    mov eax, 42
    syscall
user_fail:
    mov al, 2
    out 0xf4, al                     # I/O from ring 3 with IOPL 0 must fault: #GP
    hlt

syscall_entry:
    mov rsp, 0x80000
    cmp eax, 42
    jne fail
    mov ax, cs
    cmp ax, 0x08
    jne fail
    mov ax, ss
    cmp ax, 0x10
    jne fail

    # 7. INT 0x40 from ring 3 lands on the IST1 stack, aligned down to 16 bytes.
    lea rcx, [rip + user_int]
    mov r11, 0x2
    mov rsp, 0x70000
    sysretq
user_int:
    int 0x40
    jmp user_fail

int40_handler:
    mov qword ptr [SCRATCH], rsp
    mov rsp, 0x80000
    mov ax, 0x10
    mov ds, ax
    cmp qword ptr [SCRATCH], 0xa0000 - 40
    jne fail
    cmp qword ptr [0xa0000 - 16], 0x70000    # saved RSP
    jne fail
    cmp qword ptr [0xa0000 - 32], 0x2b       # saved CS
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

# Faults record vector, error code and CR2, then resume at R15.
pf_handler:
    push 14
    jmp common
gp_handler:
    push 13
    jmp common
ud_handler:
    push 0
    push 6
common:
    pop qword ptr [LAST_VECTOR]
    pop qword ptr [LAST_ERROR]
    push rax
    mov rax, cr2
    mov qword ptr [LAST_CR2], rax
    pop rax
    mov qword ptr [rsp], r15
    iretq

# set_gate(edi = vector, rsi = handler, edx = type/DPL byte, ecx = IST)
set_gate:
    mov rax, rdi
    shl rax, 4
    add rax, IDT
    mov word ptr [rax], si
    mov word ptr [rax + 2], 0x08
    mov byte ptr [rax + 4], cl
    mov byte ptr [rax + 5], dl
    mov r8, rsi
    shr r8, 16
    mov word ptr [rax + 6], r8w
    shr r8, 16
    mov dword ptr [rax + 8], r8d
    mov dword ptr [rax + 12], 0
    ret

.align 8
gdt:
    .quad 0
    .quad 0x00af9b000000ffff        # 0x08 kernel code, 64-bit
    .quad 0x00cf93000000ffff        # 0x10 kernel data
    .quad 0x00cffb000000ffff        # 0x18 user code, 32-bit
    .quad 0x00cff3000000ffff        # 0x20 user data
    .quad 0x00affb000000ffff        # 0x28 user code, 64-bit
    .word 0x67, 0x0000              # 0x30 TSS at 0x20000, limit 0x67
    .byte 0x02, 0x89, 0x00, 0x00
    .long 0, 0
gdt_end:
gdt_desc:
    .word gdt_end - gdt - 1
    .long gdt
idt_desc:
    .word 256 * 16 - 1
    .quad IDT
