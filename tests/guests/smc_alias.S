# Self-modifying code through an alias: one physical page mapped at two linear addresses
# (0x600000 and 0x601000). Code runs from the first; a store through the second must
# reach the translated code of the first, and the other way round. Then an instruction
# crossing from 0x602000 into 0x603000 runs hot, and 0x603000 is remapped to another
# physical page holding other bytes: the next run must execute the new bytes.
.include "lib/long.inc"
.set PT, 0x13000
.set CODE_VA, 0x600000
.set ALIAS_VA, 0x601000
.set CROSS_VA, 0x602ffe
.set SECOND_VA, 0x603000
.set OTHER_VA, 0x604000
test_main:
    mov qword ptr [PT], 0x900000 + 3
    mov qword ptr [PT + 8], 0x900000 + 3
    mov qword ptr [PT + 2 * 8], 0x902000 + 3
    mov qword ptr [PT + 3 * 8], 0x903000 + 3
    mov qword ptr [PT + 4 * 8], 0x904000 + 3
    mov qword ptr [PD + 3 * 8], PT + 3
    mov rax, cr3
    mov cr3, rax
    # Write "mov eax, 1; ret" through the code mapping and run it.
    mov rsi, offset func_template
    mov rdi, CODE_VA
    mov ecx, func_end - func_template
    cld
    rep movsb
    mov eax, CODE_VA
    call rax
    cmp eax, 1
    jne bad
    # Patch the immediate through the alias: the code mapping must see it.
    mov dword ptr [ALIAS_VA + 1], 2
    mov eax, CODE_VA
    call rax
    cmp eax, 2
    jne bad
    # Run through the alias, then patch through the code mapping.
    mov eax, ALIAS_VA
    call rax
    cmp eax, 2
    jne bad
    mov dword ptr [CODE_VA + 1], 3
    mov eax, ALIAS_VA
    call rax
    cmp eax, 3
    jne bad
    mov eax, CODE_VA
    call rax
    cmp eax, 3
    jne bad
    # "mov eax, 0x11111111; ret" from 2 bytes before 0x603000, run until hot.
    mov rsi, offset func_template
    mov rdi, CROSS_VA
    mov ecx, func_end - func_template
    rep movsb
    mov dword ptr [CROSS_VA + 1], 0x11111111
    # The other physical page holds the same tail with another immediate.
    mov dword ptr [OTHER_VA], 0xc3222222
    mov ecx, 600
1:
    mov eax, CROSS_VA
    call rax
    cmp eax, 0x11111111
    jne bad
    dec ecx
    jnz 1b
    mov qword ptr [PT + 3 * 8], 0x904000 + 3
    invlpg [SECOND_VA]
    # Twice: the first run refills the TLB entry of the second page.
    mov ecx, 2
2:
    mov eax, CROSS_VA
    call rax
    cmp eax, 0x22222211
    jne bad
    dec ecx
    jnz 2b
    jmp pass
bad:
    mov al, 2
    jmp fail

func_template:
    mov eax, 1
    ret
func_end:
