# Virtual-8086 mode: IRETD from ring 0 into VM86, paragraph segments inside it, CLI and
# PUSHF faulting with #GP at IOPL 0, the ring-0 handler seeing the VM86 frame (EFLAGS.VM and
# the saved data segments) with its own data segments nulled, and IRETD back into VM86.
.include "lib/prot.inc"
.set COUNT, 0x600
test_main:
    mov edi, 13
    mov esi, offset gp_handler
    mov dl, 0x8e
    call set_gate
    mov dword ptr [COUNT], 0
    push 0                           # GS
    push 0                           # FS
    push 0x1000                      # DS
    push 0                           # ES
    push 0                           # SS
    push 0x7000                      # ESP
    push 0x20002                     # EFLAGS: VM, IOPL 0
    push 0                           # CS
    push offset v86_code             # EIP
    iretd

.code16
v86_code:
    mov byte ptr [0], 0x77           # DS = 0x1000: linear 0x10000
    cli                              # #GP at IOPL 0; the handler skips it
    mov ax, ds
    cmp ax, 0x1000
    jne v86_bad
    pushf                            # #GP again: the handler finishes the test
v86_bad:
    hlt                              # privileged in VM86: a third #GP, which fails

.code32
gp_handler:
    mov ebx, ds                      # must be null: delivery out of VM86 nulls it
    mov ax, 0x10
    mov ds, ax
    test dword ptr [esp + 12], 0x20000
    jz bad
    cmp dword ptr [esp + 28], 0x1000 # saved DS
    jne bad
    cmp dword ptr [esp + 20], 0      # saved SS
    jne bad
    cmp ebx, 0
    jne bad
    cmp esp, 0x90000 - 40
    jne bad
    inc dword ptr [COUNT]
    cmp dword ptr [COUNT], 1
    je 1f
    cmp dword ptr [COUNT], 2
    jne bad
    cmp dword ptr [esp + 4], offset v86_bad - 1    # the faulting PUSHF
    jne bad
    cmp byte ptr [0x10000], 0x77
    jne bad
    jmp pass
1:  add dword ptr [esp + 4], 1       # skip the 1-byte CLI
    add esp, 4                       # drop the error code
    iretd
bad:
    mov al, 2
    jmp fail
