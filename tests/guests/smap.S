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
    expect_fault 1, bad, mov al, byte ptr [0x600000]
    cmp qword ptr [LAST_VECTOR], 14
    jne bad
    stac
    mov byte ptr [0x600000], 7
    clac
    # copy_to_user's shape: a loop under STAC storing to a user page and a supervisor page
    # (under the JIT both through the TLB set kept for AC), then summing the user copy.
    stac
    xor ecx, ecx
3:  imul rax, rcx, 0x12345
    mov qword ptr [0x600100 + rcx * 8], rax
    mov qword ptr [0x40000 + rcx * 8], rax
    add rcx, 1
    cmp rcx, 64
    jb 3b
    xor eax, eax
    xor ecx, ecx
4:  add rax, qword ptr [0x600100 + rcx * 8]
    add rcx, 1
    cmp rcx, 64
    jb 4b
    clac
    cmp rax, 0x12345 * 2016
    jne bad
    cmp qword ptr [0x40000 + 63 * 8], 0x12345 * 63
    jne bad
    # With AC clear again, the user page faults although the AC set maps it.
    expect_fault 1, bad, mov rax, qword ptr [0x600100]
    expect_fault 3, bad, mov byte ptr [0x600000], 8
    stac
    cmp byte ptr [0x600000], 7
    jne bad
    clac
    jmp pass
bad:
    mov al, 2
    jmp fail
