# #NP (vector 11) loading a not-present data segment, with the selector as error code, and
# #SS (vector 12) for a non-canonical stack reference and a PUSH with a non-canonical RSP.
.include "lib/long.inc"
test_main:
    lea r15, [rip + 1f]
    mov ax, 0x40
    mov ds, ax
    jmp bad
1:  cmp qword ptr [LAST_VECTOR], 11
    jne bad
    cmp qword ptr [LAST_ERROR], 0x40
    jne bad
    mov ax, ds
    cmp ax, 0x10
    jne bad
    lea r15, [rip + 2f]
    mov rbx, 0x7fff00000000
    mov rax, qword ptr [rsp + rbx * 2]
    jmp bad
2:  cmp qword ptr [LAST_VECTOR], 12
    jne bad
    cmp qword ptr [LAST_ERROR], 0
    jne bad
    # Delivery on the same broken stack would fault again: #SS goes to IST1.
    mov byte ptr [IDT + 12 * 16 + 4], 1
    mov rbp, rsp
    lea r15, [rip + 3f]
    mov rsp, 0x0000800000000008
    push rax
    jmp bad
3:  mov rsp, rbp
    cmp qword ptr [LAST_VECTOR], 12
    jne bad
    jmp pass
bad:
    mov al, 2
    jmp fail
