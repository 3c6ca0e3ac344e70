# Self-modifying code: a store into an instruction that has already run (and so is
# translated) takes effect the next time it runs, whether the store is in the same block,
# patches the very next instruction, patches a function on another page, or patches the
# part of an instruction that lies on the page after its start, or patches a function whose
# translation a compile thread is still working on, or is a read-modify-write, or patches
# code a block reached through a JMP it went on through.
.include "lib/long.inc"
.set FUNC, 0x200000
# A function whose first instruction starts 2 bytes before a page boundary.
.set CROSSING, 0x201ffe
# A function patched while a compile thread translates it.
.set FUNC_ASYNC, 0x203000
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
    # 4. The same with a MOV crossing into the next page, run often enough to be hot, then
    #    patched in its second page (its immediate's second byte).
    mov rsi, offset cross_template
    mov rdi, CROSSING
    mov ecx, cross_end - cross_template
    rep movsb
    mov ecx, 600
2:
    mov eax, CROSSING
    call rax
    cmp eax, 0x11111111
    jne bad
    dec ecx
    jnz 2b
    mov byte ptr [CROSSING + 2], 0x22
    mov eax, CROSSING
    call rax
    cmp eax, 0x11112211
    jne bad
    # 5. A function called often enough to be handed to a compile thread (the harness's
    #    JitThread engine installs finished translations at the end of each slice of
    #    10,000 instructions), patched before that, and called again slices later: the
    #    translation of the old bytes must never be installed.
    mov rsi, offset func_template
    mov rdi, FUNC_ASYNC
    mov ecx, func_end - func_template
    rep movsb
    mov ecx, 4
3:
    mov eax, FUNC_ASYNC
    call rax
    cmp eax, 7
    jne bad
    dec ecx
    jnz 3b
    mov dword ptr [FUNC_ASYNC + 1], 11
    mov ecx, 30000
4:
    dec ecx
    jnz 4b
    mov eax, FUNC_ASYNC
    call rax
    cmp eax, 11
    jne bad
    # 6. A loop whose body patches its own immediate with a read-modify-write (ADD to
    #    memory, which probes the TLB once for its load and store): 1, 2, 3.
    xor ebx, ebx
    mov ecx, 3
5:
rmw_site:
    mov eax, 1
    add ebx, eax
    add dword ptr [rmw_site + 1], 1
    dec ecx
    jnz 5b
    cmp ebx, 6
    jne bad
    # 7. A loop whose block goes on through two JMPs (forward, then back to the loop's
    #    tail), decoded as one block: the code past the first JMP increments an immediate
    #    past it: 1, 2, ..., 40.
    xor ebx, ebx
    mov ecx, 40
    .balign 64
6:
    jmp 7f
8:
    dec ecx
    jnz 6b
    jmp 9f
7:
jmp_site:
    mov eax, 1
    add ebx, eax
    add dword ptr [jmp_site + 1], 1
    jmp 8b
9:
    cmp ebx, 820
    jne bad
    jmp pass
bad:
    mov al, 2
    jmp fail

func_template:
    mov eax, 7
    ret
func_end:

cross_template:
    mov eax, 0x11111111
    ret
cross_end:
