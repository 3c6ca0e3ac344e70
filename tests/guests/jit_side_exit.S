# Blocks that go on through a Jcc into one of its ways (side exits): a loop whose middle
# Jcc leaves one round in eight, with a register written before it (held in a host
# register until an exit) and flags its target reads (SF of the ADD before it); a fault
# after a side exit's not-taken way, which must find the registers written on both sides
# of the Jcc and the fault's own RIP; and a block going on at a Jcc's target because its
# fall-through lies on the next page.
.include "lib/long.inc"
# The start of a 2 MiB page this program unmaps (its PD entry cleared), 18 MiB into RAM.
.set END_OF_MAP, 0x1200000
test_main:
    # 1. Rounds R8 = 1..400: R9 sums the rounds that go on, R10 counts those that leave
    #    (with SF set by the ADD before the JNC) and R12 sums twice the leaving rounds.
    xor r8d, r8d
    xor r9d, r9d
    xor r10d, r10d
    xor r12d, r12d
    mov ecx, 400
1:
    inc r8
    lea r11, [r8 + r8]
    mov edx, r8d
    and edx, 7
    add edx, -1                     # CF clear only when EDX was 0; SF set then
    jnc 3f
    add r9, r8
2:
    dec ecx
    jnz 1b
    jmp 4f
3:
    sets al
    movzx eax, al
    add r10, rax
    add r12, r11
    jmp 2b
4:
    # 1..400 less the 50 multiples of 8 (8 x 1275) goes on; they leave.
    cmp r9, 80200 - 10200
    jne bad
    cmp r10, 50
    jne bad
    cmp r12, 2 * 10200
    jne bad
    # 2. A load from unmapped memory after a JNZ not taken: RBX written before the JNZ,
    #    RDI after it, both done at the fault; RAX untouched. Twice.
    mov qword ptr [PD + 8 * (END_OF_MAP >> 21)], 0
    invlpg [END_OF_MAP]
    mov ecx, 2
5:
    lea r15, [rip + 7f]
    mov rbx, 0x1234
    mov rsi, END_OF_MAP
    xor eax, eax
    jnz 6f
    mov rdi, 0x5678
    add rbx, 1
load_faulting:
    mov rax, [rsi]
6:
    jmp bad
7:
    cmp qword ptr [LAST_VECTOR], 14
    jne bad
    lea rax, [rip + load_faulting]
    cmp [LAST_RIP], rax
    jne bad
    cmp rbx, 0x1235
    jne bad
    cmp rdi, 0x5678
    jne bad
    dec ecx
    jnz 5b
    # 3. A JNZ that ends a page, its fall-through on the next one: the block goes on at its
    #    target instead, the side exit leaving to the next page. 100 rounds (the block goes
    #    on, R9 sums 99..1), then 1 (it leaves at once). R14: where to resume.
    xor r15d, r15d
    xor r9d, r9d
    mov ecx, 100
    lea r14, [rip + 8f]
    jmp page_head
8:
    cmp r9, 4950
    jne bad
    mov ecx, 1
    lea r14, [rip + 9f]
    jmp page_head
9:
    cmp r9, 4950
    jne bad
    jmp pass
bad:
    mov al, 2
    jmp fail
# The loop's page, 0x9000..0xa000 (the image is linked at 0x7c00).
    .skip 0x9000 - (0x7c00 + (. - start)), 0x90
page_target:
    add r9, rcx
    jmp page_head
    .skip 0xa000 - 8 - (0x7c00 + (. - start)), 0x90
page_head:
    dec ecx
    jnz page_target                 # 6 bytes, ending at 0xa000
page_next:
    test ecx, ecx
    jnz bad
    jmp r14
