/* An ELF64 "vmlinux": entered in 64-bit mode with RSI pointing at the zero page. Checks the
 * setup header the loader wrote (HdrS, the command line, the initrd), prints the command
 * line on the debug console and exits through port 0xf4 (0 = pass). */
        .code64
        .text
        .globl start
start:
        cmpl $0x53726448, 0x202(%rsi)   /* "HdrS" */
        jne fail
        cmpb $0xff, 0x210(%rsi)         /* type_of_loader */
        jne fail
        mov 0x228(%rsi), %ebx           /* cmd_line_ptr */
print:
        mov (%rbx), %al
        test %al, %al
        jz printed
        out %al, $0xe9
        inc %rbx
        jmp print
printed:
        mov $'\n', %al
        out %al, $0xe9
        mov 0x218(%rsi), %ebx           /* ramdisk_image */
        cmpl $4, 0x21c(%rsi)            /* ramdisk_size */
        jne fail
        cmpl $0x21444f4d, (%rbx)        /* "MOD!" */
        jne fail
        mov $0, %al
        out %al, $0xf4
fail:
        mov $1, %al
        out %al, $0xf4
        hlt
