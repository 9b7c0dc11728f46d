/*
 * Prelude shared by Tandem's x86-64 test guests.
 *
 * Tandem enters _start in 64-bit ring 0 (Linux 64-bit boot protocol state). Ring 0 is
 * emulated instruction by instruction on nested-PVM hosts, so the prelude does only the
 * minimum there: its own GDT/TSS/IDT and user-accessible identity page tables (static),
 * optionally waking the other vCPUs with INIT/SIPI, then iretq to ring 3 with IOPL=3 so
 * port I/O exits straight to the VMM. In ring 3 it calls user_main(%edi = this CPU's
 * APIC ID, %esi = number of vCPUs); its return value is written to the debug-exit port.
 * Both come from CPUID executed in ring 0: on nested PVM, ring-3 CPUID runs natively and
 * reports the host's topology, not the VM's.
 *
 * Options (define before including): SMP (wake APs), HAVE_IRQ_HANDLER (the test defines
 * irq_handler for vector IRQ_VECTOR, 0x40 unless defined; ring 3 runs with interrupts
 * enabled), USER_STI_GATE (with HAVE_IRQ_HANDLER: ring 3 starts with interrupts disabled
 * and enables them with `int3`, the ring-3 stand-in for `sti`; with STI_GATE_HALTS that
 * `int3` also waits in ring 0 with `sti; hlt` until an interrupt arrives, since `hlt`
 * faults in ring 3), NO_IDT (ring 3 runs with an empty IDT).
 */
#define DEBUG_EXIT_PORT 0xf4
#define BOOT_TIMER_PORT 0xf8
#define COM1 0x3f8
#define KERNEL_CS 0x08
#define KERNEL_DS 0x10
#define USER_DS (0x18 | 3)
#define USER_CS (0x20 | 3)
#define TSS_BASE_SELECTOR 0x28
#define MAX_CPUS 8
#define STACK_SIZE 4096
/* A TSS with a full I/O permission bitmap (all ports allowed, plus the terminating
 * 0xff byte): this host's nested PVM checks the bitmap for `in` even with IOPL=3. */
#define TSS_IOMAP_OFFSET 104
#define TSS_SIZE (TSS_IOMAP_OFFSET + 8192 + 8)
#define LAPIC 0xfee00000
#define TRAMPOLINE 0x7000
#ifndef IRQ_VECTOR
#define IRQ_VECTOR 0x40
#endif
/* A DPL-3 gate whose ring-0 handler returns with IF set (USER_STI_GATE). It is the
 * breakpoint vector because `int3` is the one software interrupt this host's PVM lets
 * ring 3 raise (`int $n` for other vectors arrives as #GP). */
#define STI_VECTOR 3
/* IOPL=3 and reserved bit 1. IF is set only for tests that take interrupts, and only
 * here or through the sti gate: this host's PVM faults `sti`/`cli` in ring 3 whatever
 * the IOPL. */
#if defined(HAVE_IRQ_HANDLER) && !defined(USER_STI_GATE)
#define USER_RFLAGS 0x3202
#else
#define USER_RFLAGS 0x3002
#endif
#define UNEXPECTED_EXCEPTION 0xe0   /* exit status when an unexpected vector fires */

    .code64
    .text
    .globl _start
_start:
    cli
#ifndef NO_IDT
    call build_idt
#endif
    jmp cpu_setup

/* Entry for application processors, reached from the real-mode trampoline. */
ap_entry:
cpu_setup:
    mov $1, %eax
    cpuid                               /* in ring 0: KVM's CPUID, not the host's */
    mov %ebx, %r14d
    shr $16, %r14d
    and $0xff, %r14d                    /* r14 = number of vCPUs */
    shr $24, %ebx
    mov %ebx, %r15d                     /* r15 = this CPU's APIC ID */
    lea kernel_stacks(%rip), %rsp
    lea 1(%r15), %rax
    shl $12, %rax
    add %rax, %rsp                      /* top of this CPU's kernel stack */

    lgdt gdt_ptr(%rip)
    pushq $KERNEL_CS
    lea 1f(%rip), %rax
    push %rax
    lretq
1:  mov $KERNEL_DS, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    lidt idt_ptr(%rip)

    /* This CPU's TSS: rsp0 = kernel stack top; then its 16-byte descriptor. */
    lea tss_array(%rip), %rax
    imul $TSS_SIZE, %r15, %rcx
    add %rcx, %rax
    mov %rsp, 4(%rax)
    movw $TSS_IOMAP_OFFSET, 102(%rax)
    movb $0xff, (TSS_IOMAP_OFFSET + 8192)(%rax)
    mov %rax, %rdx
    and $0xffffff, %rdx
    shl $16, %rdx
    mov %rax, %rcx
    shr $24, %rcx
    and $0xff, %rcx
    shl $56, %rcx
    or %rcx, %rdx
    movabs $0x0000890000000000, %rcx    /* present, available 64-bit TSS */
    or %rcx, %rdx
    or $(TSS_SIZE - 1), %rdx
    lea gdt_tss(%rip), %rcx
    mov %r15, %rbx
    shl $4, %rbx
    add %rbx, %rcx
    mov %rdx, (%rcx)
    movq $0, 8(%rcx)
    mov %r15d, %eax
    shl $4, %eax
    add $TSS_BASE_SELECTOR, %eax
    ltr %ax

    lea pml4(%rip), %rax
    mov %rax, %cr3

#ifdef SMP
    test %r15, %r15
    jnz 2f
    call start_aps
2:
#endif

    /* Drop to ring 3 on this CPU's user stack. */
    lea user_stacks(%rip), %rax
    lea 1(%r15), %rcx
    shl $12, %rcx
    add %rcx, %rax
    pushq $USER_DS
    push %rax
    pushq $USER_RFLAGS
    pushq $USER_CS
    lea user_entry(%rip), %rax
    push %rax
    mov %r15d, %edi
    mov %r14d, %esi
    iretq

user_entry:
    call user_main
    out %al, $DEBUG_EXIT_PORT
3:  pause
    jmp 3b

/* Ring 0: anything but the test's interrupt is unexpected. */
exception_handler:
    mov $UNEXPECTED_EXCEPTION, %al
    out %al, $DEBUG_EXIT_PORT
4:  jmp 4b

#ifdef USER_STI_GATE
/* Ring 0, from `int3` in ring 3: return with RFLAGS.IF set in the frame
 * (rip, cs, rflags, rsp, ss), so the interrupt window opens at the iretq. */
sti_gate:
#ifdef STI_GATE_HALTS
    sti
    hlt
#endif
    orq $0x200, 16(%rsp)
    iretq
#endif

#ifndef NO_IDT
/* Fills all 256 interrupt gates (ring 0, kernel CS). */
build_idt:
    lea idt(%rip), %rdi
    xor %ecx, %ecx
5:  lea exception_handler(%rip), %rax
#ifdef HAVE_IRQ_HANDLER
    cmp $IRQ_VECTOR, %ecx
    jne 6f
    lea irq_handler(%rip), %rax
6:
#endif
#ifdef USER_STI_GATE
    cmp $STI_VECTOR, %ecx
    jne 11f
    lea sti_gate(%rip), %rax
11:
#endif
    mov %rax, %rdx
    and $0xffff, %rdx
    or $(KERNEL_CS << 16), %rdx
    movabs $0x00008e0000000000, %rsi    /* present, DPL 0, 64-bit interrupt gate */
#ifdef USER_STI_GATE
    cmp $STI_VECTOR, %ecx
    jne 12f
    movabs $0x0000ee0000000000, %rsi    /* the same, DPL 3: ring 3 may `int` to it */
12:
#endif
    or %rsi, %rdx
    mov %rax, %rsi
    shr $16, %rsi
    and $0xffff, %rsi
    shl $48, %rsi
    or %rsi, %rdx
    mov %rdx, (%rdi)
    shr $32, %rax
    mov %rax, 8(%rdi)
    add $16, %rdi
    inc %ecx
    cmp $256, %ecx
    jne 5b
    ret
#endif

#ifdef SMP
/* Copies the trampoline below 1 MiB and sends INIT, SIPI, SIPI to all other CPUs. */
start_aps:
    lea trampoline_start(%rip), %rsi
    mov $TRAMPOLINE, %edi
    mov $(trampoline_end - trampoline_start), %ecx
    rep movsb
    mov $LAPIC, %ebx
    movl $0x1ff, 0xf0(%rbx)             /* software-enable the local APIC */
    movl $0, 0x310(%rbx)
    movl $0x000c4500, 0x300(%rbx)       /* INIT, all excluding self */
    movl $(0x000c4600 | (TRAMPOLINE >> 12)), 0x300(%rbx)
    movl $(0x000c4600 | (TRAMPOLINE >> 12)), 0x300(%rbx)
    ret

    .code16
trampoline_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    lgdtl (tramp_gdt_ptr - trampoline_start + TRAMPOLINE)
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl $0x08, $(tramp32 - trampoline_start + TRAMPOLINE)
    .code32
tramp32:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %ss
    mov %cr4, %eax
    or $0x20, %eax                      /* PAE */
    mov %eax, %cr4
    mov (tramp_cr3 - trampoline_start + TRAMPOLINE), %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx               /* EFER.LME */
    rdmsr
    or $0x100, %eax
    wrmsr
    mov %cr0, %eax
    or $0x80000000, %eax
    mov %eax, %cr0
    ljmp $0x18, $(tramp64 - trampoline_start + TRAMPOLINE)
    .code64
tramp64:
    movabs $ap_entry, %rax
    jmp *%rax
    .p2align 3
tramp_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff            /* 0x08: 32-bit code */
    .quad 0x00cf92000000ffff            /* 0x10: data */
    .quad 0x00af9a000000ffff            /* 0x18: 64-bit code */
tramp_gdt_ptr:
    .word 31
    .long tramp_gdt - trampoline_start + TRAMPOLINE
tramp_cr3:
    .long pml4
trampoline_end:
#endif

/* Ring 3 helpers. */

/* putc: writes %al to COM1 once the transmitter is empty. Clobbers %edx. */
putc:
    push %rax
    mov $(COM1 + 5), %dx
7:  in %dx, %al
    test $0x20, %al
    jz 7b
    pop %rax
    mov $COM1, %dx
    out %al, %dx
    ret

/* puts: writes the NUL-terminated string at %rsi. Clobbers %eax, %edx, %rsi. */
puts:
    lodsb
    test %al, %al
    jz 8f
    call putc
    jmp puts
8:  ret

    .data
    .p2align 3
gdt:
    .quad 0
    .quad 0x00af9a000000ffff            /* 0x08: kernel code, 64-bit */
    .quad 0x00cf92000000ffff            /* 0x10: kernel data */
    .quad 0x00cff2000000ffff            /* 0x18: user data */
    .quad 0x00affa000000ffff            /* 0x20: user code, 64-bit */
gdt_tss:
    .fill MAX_CPUS * 2, 8, 0            /* 0x28 + 16*n: TSS of CPU n */
gdt_end:
gdt_ptr:
    .word gdt_end - gdt - 1
    .quad gdt

    .p2align 3
idt_ptr:
#ifdef NO_IDT
    .word 0
    .quad 0
#else
    .word 256 * 16 - 1
    .quad idt
#endif

/* Identity map of the low 4 GiB with 2 MiB pages, user-accessible (U|W|P). */
    .p2align 12
pml4:
    .quad pdpt + 0x7
    .fill 511, 8, 0
pdpt:
    .quad pd + 0x7
    .quad pd + 0x1000 + 0x7
    .quad pd + 0x2000 + 0x7
    .quad pd + 0x3000 + 0x7
    .fill 508, 8, 0
pd:
    .set page, 0
    .rept 2048
    .quad (page << 21) | 0x87
    .set page, page + 1
    .endr

    .bss
    .p2align 12
idt:
    .skip 256 * 16
tss_array:
    .skip MAX_CPUS * TSS_SIZE
    .p2align 12
kernel_stacks:
    .skip MAX_CPUS * STACK_SIZE
user_stacks:
    .skip MAX_CPUS * STACK_SIZE

    .text
