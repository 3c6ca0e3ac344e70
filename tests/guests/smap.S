# SMAP: with CR4.SMAP, a ring-0 data access to a user page faults (#PF, P = 1) unless
# RFLAGS.AC is set (STAC); CLAC closes it again; STAC in ring 3 is #UD.
.include "lib/long.inc"
test_main:
    mov eax, 7
    xor ecx, ecx
    cpuid
    test ebx, 1 << 20
    jz bad
    # The stack and the test's own variables must stay reachable: keep the first 2 MiB
    # supervisor-only, so only user pages are SMAP-protected.
    and qword ptr [PD], ~4
    mov rax, cr3
    mov cr3, rax
    mov rax, cr4
    or rax, 1 << 21
    mov cr4, rax
    lea r15, [rip + 1f]
    mov al, byte ptr [0x600000]
    jmp bad
1:  cmp qword ptr [LAST_VECTOR], 14
    jne bad
    cmp qword ptr [LAST_ERROR], 1
    jne bad
    stac
    mov byte ptr [0x600000], 7
    clac
    lea r15, [rip + 2f]
    mov byte ptr [0x600000], 8
    jmp bad
2:  cmp qword ptr [LAST_ERROR], 3
    jne bad
    stac
    cmp byte ptr [0x600000], 7
    jne bad
    clac
    jmp pass
bad:
    mov al, 2
    jmp fail
