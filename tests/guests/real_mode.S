# Real mode: the IVT, INT n and IRET, #DE delivery and resuming after it, segment
# arithmetic, and an external interrupt held off by IF and by the STI shadow.
.intel_syntax noprefix
.code16
.globl start
start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7c00

    # INT 0x30 adds 10 to BX.
    mov word ptr [0x30*4], offset int30
    mov word ptr [0x30*4+2], 0
    mov bx, 5
    int 0x30
    cmp bx, 15
    jne fail

    # DIV by zero raises #DE (vector 0); the handler skips the 2-byte DIV.
    mov word ptr [0], offset divide_error
    mov word ptr [2], 0
    xor cx, cx
    mov ax, 100
    div cl
    cmp dx, 0x1234
    jne fail

    # Segments are paragraphs: ES=0x1000 offset 0x10 is linear 0x10010.
    mov ax, 0x1000
    mov es, ax
    mov byte ptr es:[0x10], 0x5a
    xor ax, ax
    mov ds, ax
    mov ax, 0x1001
    mov fs, ax
    cmp byte ptr fs:[0], 0x5a
    jne fail

    # An external interrupt stays pending while IF=0, and STI defers it one instruction.
    mov word ptr [0x31*4], offset int31
    mov word ptr [0x31*4+2], 0
    xor si, si
    mov dx, 0x510
    mov al, 0x31
    out dx, al
    nop
    cmp si, 0
    jne fail
    sti
    mov di, si
    cli
    cmp di, 0
    jne fail
    cmp si, 1
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

int30:
    add bx, 10
    iret
int31:
    inc si
    iret
divide_error:
    mov dx, 0x1234
    push bp
    mov bp, sp
    add word ptr [bp+2], 2
    pop bp
    iret
