# #AC (vector 17): with CR0.AM and RFLAGS.AC, a misaligned access in ring 3 faults with error
# code 0; aligned accesses and ring 0 are not checked.
.include "lib/long.inc"
test_main:
    mov rax, cr0
    or rax, 1 << 18                  # AM
    mov cr0, rax
    pushfq
    or qword ptr [rsp], 1 << 18      # AC
    popfq
    mov eax, dword ptr [0x601]       # ring 0: no check
    lea rax, [rip + kernel_again]
    mov qword ptr [SYSCALL_TARGET], rax
    lea rcx, [rip + user]
    mov r11, 0x40002                 # AC on in ring 3
    mov rsp, USER_STACK
    sysretq
user:
    mov eax, dword ptr [0x600]       # aligned
    lea r15, [rip + 1f]
    mov eax, dword ptr [0x602]
    jmp user_bad
1:  cmp qword ptr [LAST_VECTOR], 17
    jne user_bad
    cmp qword ptr [LAST_ERROR], 0
    jne user_bad
    syscall
user_bad:
    ud2
kernel_again:
    cmp qword ptr [FAULTS], 1
    jne bad
    jmp pass
bad:
    mov al, 2
    jmp fail
