# Writes beside translated code on its page. A function of two blocks (the first jumps to
# the second, so a translation links them) shares its page with data the program writes
# now and then between calls: the data writes leave its result alone, and a patch of the second
# block's immediate takes effect although the first block, whose bytes were not written,
# stays translated after being linked to the old second block. Then the first block is
# patched while the second stays.
.include "lib/long.inc"
.set FUNC, 0x204000
.set DATA, 0x204800
.set SECOND_IMM, second_block - pair_template + 2
test_main:
    mov rsi, offset pair_template
    mov rdi, FUNC
    mov ecx, pair_end - pair_template
    cld
    rep movsb
    # 1. Hot, so translated (and linked) under every JIT engine; data written each call.
    mov ecx, 600
1:
    mov eax, FUNC
    call rax
    cmp eax, 3
    jne bad
    call write_data
    dec ecx
    jnz 1b
    # 2. The second block's immediate: add eax, 5.
    mov byte ptr [FUNC + SECOND_IMM], 5
    mov ecx, 600
2:
    mov eax, FUNC
    call rax
    cmp eax, 6
    jne bad
    call write_data
    dec ecx
    jnz 2b
    # 3. The first block's immediate: mov eax, 4.
    mov byte ptr [FUNC + 1], 4
    mov ecx, 600
3:
    mov eax, FUNC
    call rax
    cmp eax, 9
    jne bad
    dec ecx
    jnz 3b
    jmp pass
bad:
    mov al, 2
    jmp fail

# A data write beside the function every 64th call (ECX a multiple of 64): few enough
# that the engine keeps dropping only what a write touches (see `PARTIAL_WRITES`).
write_data:
    test ecx, 63
    jnz 1f
    mov word ptr [DATA + rcx*2], cx
1:
    ret

pair_template:
    mov eax, 1
    jmp second_block
    .fill 9, 1, 0x90
second_block:
    add eax, 2
    ret
pair_end:
