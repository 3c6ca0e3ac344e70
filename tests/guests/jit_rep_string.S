# REP MOVS and REP STOS, which translated code runs inline when the run lies inside one
# RAM page each way and goes to the interpreter otherwise: runs of 0 to 127 bytes below,
# across and above a 4 KiB boundary on either side; an element size of 8; a copy onto its
# own source from above (the element order repeats the source's start) and from below (a
# move); DF set; an FS source; a fill running into unmapped memory (the fault leaves the
# elements before it done and RCX counting the rest); and a copy onto translated code.
# Each part loops, so its block is translated.
.include "lib/long.inc"
# SRC and DST sit 64 bytes below a 4 KiB boundary (inside mapped 2 MiB pages).
.set SRC, 0x301000 - 64
.set DST, 0x312000 - 64
.set BUF, 0x320000
# The start of a 2 MiB page this program unmaps, 18 MiB into RAM.
.set END_OF_MAP, 0x1200000
.set FUNC, 0x205000
test_main:
    cld
    # The source pattern: byte i of [SRC - 256, SRC + 512) is 7i + 3.
    mov rdi, SRC - 256
    xor eax, eax
0:
    lea edx, [rax * 8]
    sub edx, eax
    add edx, 3
    mov [rdi + rax], dl
    inc eax
    cmp eax, 768
    jne 0b
    # 1. 400 copies: length, source and destination offsets vary, so runs lie below,
    #    across and above the boundaries; 0-byte runs too. Zeroed guard bytes around.
    mov r12d, 400
1:
    mov rdi, DST - 256
    xor eax, eax
    mov ecx, 768 / 8
    rep stosq
    cmp rdi, DST + 512
    jne bad
    test rcx, rcx
    jne bad
    imul ebx, r12d, 7
    and ebx, 127                     # length
    imul r13d, r12d, 13
    and r13d, 127
    lea rsi, [SRC - 64 + r13]        # source
    imul r14d, r12d, 29
    and r14d, 127
    lea rdi, [DST - 64 + r14]        # destination
    mov r8, rsi
    mov r9, rdi
    mov rcx, rbx
    rep movsb
    test rcx, rcx
    jne bad
    lea rax, [r8 + rbx]
    cmp rsi, rax
    jne bad
    lea rax, [r9 + rbx]
    cmp rdi, rax
    jne bad
    cmp byte ptr [r9 - 1], 0
    jne bad
    cmp byte ptr [r9 + rbx], 0
    jne bad
    xor eax, eax
2:
    cmp rax, rbx
    je 3f
    mov dl, [r8 + rax]
    cmp dl, [r9 + rax]
    jne bad
    inc rax
    jmp 2b
3:
    # The same run in quadwords (length / 8 of them) after the bytes.
    mov rsi, r8
    lea rdi, [r9 + rbx]
    mov rcx, rbx
    shr rcx, 3
    rep movsq
    test rcx, rcx
    jne bad
    mov rcx, rbx
    and ecx, ~7
    lea rax, [r8 + rcx]
    cmp rsi, rax
    jne bad
    mov rax, [r8]
    test ebx, ~7
    jz 4f
    cmp [r9 + rbx], rax
    jne bad
4:
    # A fill of words over the bytes: AX's low word repeated.
    mov rdi, r9
    mov rcx, rbx
    shr rcx, 1
    mov rax, 0x123456789abcbeef
    rep stosw
    test ebx, ~1
    jz 5f
    cmp word ptr [r9], 0xbeef
    jne bad
    lea rax, [rbx - 2]
    and rax, ~1
    cmp word ptr [r9 + rax], 0xbeef
    jne bad
5:
    dec r12d
    jnz 1b

    # 2. Onto the source from above: dst = src + 3 repeats the source's first 3 bytes.
    mov r12d, 300
6:
    mov rdi, BUF
    mov rax, 0x0807060504030201
    mov ecx, 8
    rep stosq
    mov rsi, BUF
    lea rdi, [BUF + 3]
    mov ecx, 40
    rep movsb
    xor eax, eax
7:
    mov ecx, eax                     # ECX = EAX mod 3
8:
    cmp ecx, 3
    jb 9f
    sub ecx, 3
    jmp 8b
9:
    mov dl, [BUF + rcx]
    cmp dl, [BUF + rax]
    jne bad
    inc eax
    cmp eax, 43
    jne 7b
    # From below: dst = src - 5 is a move.
    mov rdi, BUF
    mov rax, 0x0807060504030201
    mov ecx, 8
    rep stosq
    lea rsi, [BUF + 5]
    mov rdi, BUF
    mov ecx, 40
    rep movsb
    cmp byte ptr [BUF], 6
    jne bad
    cmp byte ptr [BUF + 39], 5
    jne bad
    cmp byte ptr [BUF + 40], 1
    jne bad
    # DF set: backwards, 16 bytes ending at SRC + 15 to BUF + 100 .. BUF + 115.
    std
    lea rsi, [SRC + 15]
    lea rdi, [BUF + 115]
    mov ecx, 16
    rep movsb
    cld
    cmp rsi, SRC - 1
    jne bad
    cmp rdi, BUF + 99
    jne bad
    mov al, [SRC]
    cmp [BUF + 100], al
    jne bad
    mov al, [SRC + 15]
    cmp [BUF + 115], al
    jne bad
    # RCX = 0: nothing.
    mov rsi, SRC
    mov rdi, BUF + 200
    mov byte ptr [BUF + 200], 0x5a
    xor ecx, ecx
    rep movsb
    cmp rsi, SRC
    jne bad
    cmp rdi, BUF + 200
    jne bad
    cmp byte ptr [BUF + 200], 0x5a
    jne bad
    dec r12d
    jnz 6b

    # 3. An FS source: FS.base + RSI.
    mov ecx, 0xc0000100
    mov eax, 0x1000
    xor edx, edx
    wrmsr
    mov r12d, 300
10:
    mov rsi, SRC - 0x1000
    mov rdi, BUF + 300
    mov ecx, 24
    rep movs byte ptr es:[rdi], byte ptr fs:[rsi]
    mov rax, [SRC + 16]
    cmp [BUF + 316], rax
    jne bad
    mov byte ptr [BUF + 300], 0
    dec r12d
    jnz 10b

    # 4. A fill of 30 bytes from END_OF_MAP - 10 into the unmapped page: 10 done, #PF at
    #    END_OF_MAP, RCX 20; then 8 bytes wholly in it: none done, RCX 8.
    mov qword ptr [PD + 8 * (END_OF_MAP >> 21)], 0
    invlpg [END_OF_MAP]
    mov r12d, 300
11:
    mov qword ptr [END_OF_MAP - 16], 0
    mov qword ptr [END_OF_MAP - 8], 0
    mov rdi, END_OF_MAP - 10
    mov ecx, 30
    mov al, 0x77
    lea r15, [rip + 12f]
    rep stosb
    jmp bad
12:
    cmp qword ptr [LAST_VECTOR], 14
    jne bad
    cmp rcx, 20
    jne bad
    cmp rdi, END_OF_MAP
    jne bad
    cmp byte ptr [END_OF_MAP - 11], 0
    jne bad
    cmp byte ptr [END_OF_MAP - 10], 0x77
    jne bad
    cmp byte ptr [END_OF_MAP - 1], 0x77
    jne bad
    mov rdi, END_OF_MAP + 64
    mov ecx, 8
    lea r15, [rip + 13f]
    rep stosb
    jmp bad
13:
    cmp qword ptr [LAST_VECTOR], 14
    jne bad
    cmp rcx, 8
    jne bad
    cmp rdi, END_OF_MAP + 64
    jne bad
    dec r12d
    jnz 11b
    xor r15d, r15d

    # 5. A copy onto translated code: FUNC returns 1, is hot, then REP MOVSB writes its
    #    immediate to 2.
    mov rsi, offset func_template
    mov rdi, FUNC
    mov ecx, func_end - func_template
    rep movsb
    mov r12d, 300
14:
    mov eax, FUNC
    call rax
    cmp eax, 1
    jne bad
    dec r12d
    jnz 14b
    mov byte ptr [BUF + 400], 2
    mov rsi, BUF + 400
    mov rdi, FUNC + 1
    mov ecx, 1
    rep movsb
    mov r12d, 300
15:
    mov eax, FUNC
    call rax
    cmp eax, 2
    jne bad
    dec r12d
    jnz 15b
    jmp pass
bad:
    mov al, 2
    jmp fail

func_template:
    mov eax, 1
    ret
func_end:
