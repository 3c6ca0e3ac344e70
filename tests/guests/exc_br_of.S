# #BR (vector 5) from BOUND with an index outside its bounds, and #OF (vector 4) from INTO
# with OF set; both exist only outside 64-bit mode. INTO is a trap (saved EIP is the next
# instruction), BOUND a fault.
.include "lib/prot.inc"
.set BOUNDS, 0x600
test_main:
    mov dword ptr [BOUNDS], -5
    mov dword ptr [BOUNDS + 4], 10
    mov eax, -5
    bound eax, [BOUNDS]
    mov eax, 10
    bound eax, [BOUNDS]
    mov dword ptr [RESUME], offset 1f
    mov eax, 11
    bound eax, [BOUNDS]
    jmp bad
1:  cmp dword ptr [LAST_VECTOR], 5
    jne bad
    mov eax, 1
    add eax, 0                       # OF clear: INTO does nothing
    into
    mov dword ptr [RESUME], offset 2f
    mov eax, 0x7fffffff
    add eax, 1                       # OF set
    into
3:  jmp bad
2:  cmp dword ptr [LAST_VECTOR], 4
    jne bad
    cmp dword ptr [LAST_EIP], offset 3b
    jne bad
    cmp dword ptr [FAULTS], 2
    jne bad
    jmp pass
bad:
    mov al, 2
    jmp fail
