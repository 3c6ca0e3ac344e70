# Mode switches all the way down: 64-bit mode -> compatibility mode (far return to a 32-bit
# segment) -> paging off, which deactivates long mode (EFER.LMA clears) -> 16-bit protected
# mode -> real mode (PE clear, far jump), checking the CPU state at each step.
.include "lib/long.inc"
test_main:
    lea rax, [rip + compat32]
    push 0x58
    push rax
    retfq
.code32
compat32:
    mov eax, 0x12345678              # 32-bit operand size by default
    shl eax, 4
    cmp eax, 0x23456780
    jne bad32
    mov eax, cr0
    and eax, 0x7fffffff              # paging off: long mode deactivates
    mov cr0, eax
    mov ecx, 0xc0000080
    rdmsr
    test eax, 1 << 10                # LMA clear
    jnz bad32
    and eax, ~0x100                  # LME off
    wrmsr
    .byte 0xea                       # jmp far 0x60:prot16
    .long prot16
    .word 0x60
bad32:
    mov al, 3
    out TEST_EXIT, al
    hlt
.code16
prot16:
    mov ax, 0x68
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7000
    mov eax, cr0
    and eax, ~1
    mov cr0, eax
    .byte 0xea                       # jmp far 0000:real16
    .word real16
    .word 0
real16:
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov ax, 0x1000
    mov es, ax
    mov byte ptr es:[0], 0x42        # paragraph addressing: linear 0x10000
    mov bx, 0x1000
    mov ds, bx
    cmp byte ptr [0], 0x42
    jne bad16
    mov al, 'R'
    out DEBUGCON, al
    mov al, 0
    out TEST_EXIT, al
    hlt
bad16:
    mov al, 4
    out TEST_EXIT, al
    hlt
