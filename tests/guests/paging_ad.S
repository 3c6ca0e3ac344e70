# Accessed and dirty bits: a read sets A in every level used (PML4E, PDPTE, PDE, PTE) but not
# D; a write sets D in the PTE only; INVLPG makes a changed PTE take effect.
.include "lib/long.inc"
.set PT, 0x13000
test_main:
    mov qword ptr [PT], 0x900000 + 3
    mov qword ptr [PT + 8], 0x901000 + 3
    mov qword ptr [PD + 3 * 8], PT + 3
    and qword ptr [PML4], ~0x20
    and qword ptr [PDPT], ~0x20
    mov rax, cr3
    mov cr3, rax
    mov al, byte ptr [0x600000]
    test qword ptr [PT], 0x20
    jz bad
    test qword ptr [PT], 0x40
    jnz bad
    test qword ptr [PD + 3 * 8], 0x20
    jz bad
    test qword ptr [PDPT], 0x20
    jz bad
    test qword ptr [PML4], 0x20
    jz bad
    mov byte ptr [0x600000], 1
    test qword ptr [PT], 0x40
    jz bad
    test qword ptr [PD + 3 * 8], 0x40
    jnz bad
    # A 2 MiB leaf gets D too.
    and qword ptr [PD + 4 * 8], ~0x60
    invlpg [0x800000]
    mov byte ptr [0x800010], 1
    test qword ptr [PD + 4 * 8], 0x40
    jz bad
    # Remap page 0 to the frame of page 1: INVLPG makes it visible.
    mov byte ptr [0x901000], 0x5a
    mov qword ptr [PT], 0x901000 + 3
    invlpg [0x600000]
    cmp byte ptr [0x600000], 0x5a
    jne bad
    jmp pass
bad:
    mov al, 2
    jmp fail
