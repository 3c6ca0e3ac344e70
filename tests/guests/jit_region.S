# Loops spread over several blocks of one page, which the JIT translates as one region (a
# function whose branches between those blocks are jumps inside it): a loop split by a
# branch with memory accesses each round, and a loop that patches an instruction of
# another of its blocks (the store stops the region; the patched code runs from then on).
.include "lib/long.inc"
.set DATA, 0x300000
test_main:
    # 1. Sum 1..1000 through memory, odd numbers twice: 500500 + 250000.
    mov rdi, DATA
    xor ebx, ebx
    mov ecx, 1
1:
    mov [rdi], rcx
    test ecx, 1
    jz 2f
    add rbx, [rdi]
2:
    add rbx, [rdi]
    inc ecx
    cmp ecx, 1000
    jbe 1b
    cmp rbx, 750500
    jne bad
    # 2. Twenty rounds adding an immediate that round 11 patches from 1 to 3: 10 + 30.
    xor ebx, ebx
    mov ecx, 20
3:
    cmp ecx, 10
    jne 4f
    mov dword ptr [patch_site + 1], 3
4:
patch_site:
    mov eax, 1
    add ebx, eax
    dec ecx
    jnz 3b
    cmp ebx, 40
    jne bad
    jmp pass
bad:
    mov al, 2
    jmp fail
