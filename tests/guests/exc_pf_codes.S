# #PF (vector 14) error codes and CR2: not present (0), supervisor page read from ring 3
# (U|P = 5), read-only write from ring 3 (U|W|P = 7, also by a read-modify-write), a
# reserved bit (RSVD|P = 9), and an instruction fetch from an NX page (I/D|P = 0x11).
# Then an INC keeping a carry its block found in the lazy state, right before a CMP that
# faults: the RFLAGS the fault saves hold that carry (the JIT computes it only on the way
# out).
.include "lib/long.inc"
.set PT, 0x13000
test_main:
    # 2 MiB at 0x600000 becomes a page table: page 0 supervisor-only, page 1 read-only,
    # page 2 reserved bit 51, page 3 NX, page 4 absent.
    mov qword ptr [PT + 0], 0x600000 + 3
    mov qword ptr [PT + 8], 0x601000 + 5
    mov rax, (1 << 51) + 0x602000 + 7
    mov qword ptr [PT + 16], rax
    mov rax, (1 << 63) + 0x603000 + 7
    mov qword ptr [PT + 24], rax
    mov qword ptr [PT + 32], 0
    mov qword ptr [PD + 3 * 8], PT + 7
    mov rax, cr3
    mov cr3, rax
    mov byte ptr [0x603000], 0xc3    # RET, in the NX page
    expect_fault 0, bad, mov al, byte ptr [0x604000]
    cmp qword ptr [LAST_CR2], 0x604000
    jne bad
    expect_fault 9, bad, mov al, byte ptr [0x602010]
    mov eax, 0x603000
    expect_fault 0x11, bad, call rax
    cmp qword ptr [LAST_CR2], 0x603000
    jne bad
    mov ecx, 600
2:
    clc                              # CF = 0 in the RFLAGS bits
    jmp 1f
1:  mov eax, -1
    add eax, 1                       # CF = 1, left lazily (an ADD) at the block's end
    jmp 1f
1:  lea r15, [rip + 3f]
    inc ebx
    cmp byte ptr [0x604000], 0       # not present: #PF, resuming at 3 with its RFLAGS
    jmp bad
3:  jnc bad
    dec ecx
    jnz 2b
    lea rax, [rip + kernel_again]
    mov qword ptr [SYSCALL_TARGET], rax
    lea rcx, [rip + user]
    jmp to_user
user:
    expect_fault 5, user_bad, mov al, byte ptr [0x600008]
    expect_fault 7, user_bad, mov byte ptr [0x601000], 1
    cmp qword ptr [LAST_CR2], 0x601000
    jne user_bad
    mov al, byte ptr [0x601000]      # reading the read-only page is fine
    # A read-modify-write of it faults as a write, though its read would not (the page
    # is in the TLB for reading now), and leaves the byte alone.
    expect_fault 7, user_bad, add byte ptr [0x601000], 1
    cmp byte ptr [0x601000], al
    jne user_bad
    syscall
user_bad:
    ud2
kernel_again:
    cmp qword ptr [FAULTS], 606
    jne bad
    jmp pass
bad:
    mov al, 2
    jmp fail
