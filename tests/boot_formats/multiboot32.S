/* A multiboot v1 ELF32 kernel: checks what the loader hands over (EAX magic, the
 * information structure's flags, command line and module, protected mode without paging),
 * prints the command line on the debug console and exits through port 0xf4 (0 = pass). */
        .code32
        .text
        .globl start
        .align 4
multiboot_header:
        .long 0x1BADB002
        .long 0x00000003            /* page-aligned modules, memory information */
        .long -(0x1BADB002 + 3)
start:
        cmp $0x2BADB002, %eax
        jne fail
        testl $(1 << 2), (%ebx)     /* cmdline present */
        jz fail
        testl $(1 << 0), (%ebx)     /* mem_lower/mem_upper present */
        jz fail
        cmpl $(31 << 10), 8(%ebx)   /* mem_upper: 32 MiB of RAM minus the first 1 MiB */
        jne fail
        mov 16(%ebx), %esi
print:
        lodsb
        test %al, %al
        jz printed
        out %al, $0xe9
        jmp print
printed:
        mov $'\n', %al
        out %al, $0xe9
        cmpl $1, 20(%ebx)           /* one module: the initrd */
        jne fail
        mov 24(%ebx), %esi
        mov (%esi), %esi
        cmpl $0x21444f4d, (%esi)    /* "MOD!" */
        jne fail
        mov %cr0, %eax
        test $0x80000000, %eax      /* paging off */
        jnz fail
        test $1, %eax               /* protected mode on */
        jz fail
        mov $0, %al
        out %al, $0xf4
fail:
        mov $1, %al
        out %al, $0xf4
        hlt
