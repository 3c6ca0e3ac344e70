# #MF (vector 16): an unmasked x87 zero-divide sets ES in the status word, and the next
# waiting x87 instruction raises #MF (CR0.NE is set); FNCLEX clears it.
.include "lib/long.inc"
.set CW, 0x600
test_main:
    fninit
    mov word ptr [CW], 0x037b        # unmask ZE
    fldcw word ptr [CW]
    fld1
    fldz
    fdivp st(1), st                  # 1/0: ZE pending, no fault yet
    fnstsw ax
    test ax, 0x0084                  # ZE and ES
    jz bad
    lea r15, [rip + 1f]
    fwait
    jmp bad
1:  cmp qword ptr [LAST_VECTOR], 16
    jne bad
    fnclex
    xor r15, r15
    fwait
    fld1
    jmp pass
bad:
    mov al, 2
    jmp fail
