# PAE paging in 32-bit protected mode: a 4-entry PDPT, 2 MiB pages and a 4 KiB page table,
# NX with EFER.NXE (#PF I/D|P on a fetch), A/D bits in 8-byte entries, and CR2 for a fault
# above 1 GiB where the PDPTE is not present.
.include "lib/prot.inc"
.set PDPT, 0x40000
.set PD, 0x41000
.set PT, 0x42000
test_main:
    mov edi, PDPT
    xor eax, eax
    mov ecx, 0x3000 / 4
    cld
    rep stosd
    mov dword ptr [PDPT], PD + 1
    mov ecx, 0
1:  mov eax, ecx
    shl eax, 21
    or eax, 0x83
    mov dword ptr [PD + ecx * 8], eax
    inc ecx
    cmp ecx, 512
    jne 1b
    mov dword ptr [PD + 3 * 8], PT + 3           # 0x600000: 4 KiB pages
    mov dword ptr [PT], 0x600000 + 3
    mov dword ptr [PT + 8], 0x601000 + 3
    mov dword ptr [PT + 12], 0x80000000          # page 1: NX
    mov ecx, 0xc0000080
    rdmsr
    or eax, 1 << 11                  # NXE
    wrmsr
    mov eax, cr4
    or eax, 0x20                     # PAE
    mov cr4, eax
    mov eax, PDPT
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    mov byte ptr [0x600000], 0xc3
    mov eax, 0x600000
    call eax                         # executable
    test dword ptr [PT], 0x20
    jz bad
    test dword ptr [PT], 0x40
    jz bad
    mov byte ptr [0x601000], 0xc3
    mov dword ptr [RESUME], offset 2f
    mov eax, 0x601000
    call eax
    jmp bad
2:  cmp dword ptr [LAST_VECTOR], 14
    jne bad
    cmp dword ptr [LAST_ERROR], 0x11
    jne bad
    add esp, 4                       # the CALL completed; the fetch at its target faulted
    mov dword ptr [RESUME], offset 3f
    mov al, byte ptr [0x40000000]
    jmp bad
3:  cmp dword ptr [LAST_ERROR], 0
    jne bad
    cmp dword ptr [LAST_CR2], 0x40000000
    jne bad
    jmp pass
bad:
    mov al, 2
    jmp fail
