# #DF (vector 8): a #GP whose gate is not present raises #NP during delivery; two
# contributory exceptions make a double fault, delivered with error code 0 on IST1.
.include "lib/long.inc"
test_main:
    and byte ptr [IDT + 13 * 16 + 5], 0x7f     # #GP gate: not present
    mov byte ptr [IDT + 8 * 16 + 4], 1         # #DF on IST1
    lea r15, [rip + 1f]
    mov rbx, 0x8000000000000000
    mov rax, qword ptr [rbx]                   # #GP -> #NP -> #DF
    jmp bad
1:  cmp qword ptr [LAST_VECTOR], 8
    jne bad
    cmp qword ptr [LAST_ERROR], 0
    jne bad
    jmp pass
bad:
    mov al, 2
    jmp fail
