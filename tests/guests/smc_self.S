# Self-modifying code: a store into an instruction that has already run (and so is
# translated) takes effect the next time it runs, whether the store is in the same block,
# patches the very next instruction, or patches a function on another page.
.include "lib/long.inc"
.set FUNC, 0x200000
test_main:
    # 1. A loop whose body patches its own immediate: 1, then 5, then 5.
    xor ebx, ebx
    mov ecx, 3
1:
loop_site:
    mov eax, 1
    add ebx, eax
    mov dword ptr [loop_site + 1], 5
    dec ecx
    jnz 1b
    cmp ebx, 11
    jne bad
    # 2. Patch the next instruction of the same straight-line block.
    mov byte ptr [next_site + 1], 0x42
next_site:
    mov al, 0
    cmp al, 0x42
    jne bad
    # 3. A function on another page: copy it there, call it, patch it, call it again.
    mov rsi, offset func_template
    mov rdi, FUNC
    mov ecx, func_end - func_template
    cld
    rep movsb
    mov eax, FUNC
    call rax
    cmp eax, 7
    jne bad
    mov dword ptr [FUNC + 1], 9
    mov eax, FUNC
    call rax
    cmp eax, 9
    jne bad
    jmp pass
bad:
    mov al, 2
    jmp fail

func_template:
    mov eax, 7
    ret
func_end:
