/*
 * A virtio 1.x driver for the virtio-blk device in the first virtio-mmio slot
 * (0xd0000000, ISA IRQ 5), in ring 3. Run with `--disk path=FILE` (at least 4 sectors)
 * under either irqchip mode.
 *
 * Checks the MMIO identification (magic "virt", version 2, device id 2), negotiates
 * VERSION_1 only, sets up queue 0 (8 entries: descriptor table, available and used
 * rings in this image's memory) and sends three requests, each a chain of a header, a
 * 512-byte data buffer and a status byte, notified through the QueueNotify register
 * (a KVM ioeventfd):
 *
 *   1. OUT (write sector 3 with a pattern) with interrupts disabled: it polls the used
 *      ring and the PIC's IRR, then enables interrupts (`int3`, the prelude's `sti`);
 *      the used-ring interrupt latched in the PIC meanwhile arrives as the window opens.
 *   2. IN (read sector 3 back) and 3. FLUSH with interrupts enabled: each waits for its
 *      used-ring interrupt, which a device worker thread raises while the vCPU spins.
 *
 * The ring-0 handler (vector 0x45: IRQ 5 through the PIC) reads and acknowledges the
 * device's InterruptStatus and sends the PIC an EOI. Prints a line and exits 0 when
 * every step is as the spec says; otherwise exits with the number of the failed check.
 */
#define HAVE_IRQ_HANDLER
#define USER_STI_GATE
#define VIRTIO_IRQ 5
#define IRQ_VECTOR (0x40 + VIRTIO_IRQ)
#include "prelude.S"

#define VIRTIO 0xd0000000
#define MAGIC 0x000
#define VERSION 0x004
#define DEVICE_ID 0x008
#define DEVICE_FEATURES 0x010
#define DEVICE_FEATURES_SEL 0x014
#define DRIVER_FEATURES 0x020
#define DRIVER_FEATURES_SEL 0x024
#define QUEUE_SEL 0x030
#define QUEUE_NUM_MAX 0x034
#define QUEUE_NUM 0x038
#define QUEUE_READY 0x044
#define QUEUE_NOTIFY 0x050
#define INTERRUPT_STATUS 0x060
#define INTERRUPT_ACK 0x064
#define STATUS 0x070
#define QUEUE_DESC 0x080
#define QUEUE_DRIVER 0x090
#define QUEUE_DEVICE 0x0a0
#define CONFIG_CAPACITY 0x100

#define S_ACKNOWLEDGE 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8

#define QSIZE 8
#define DESC_NEXT 1
#define DESC_WRITE 2
#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define SECTOR 3

#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xa0
#define PIC2_DATA 0xa1

irq_handler:
    push %rax
    push %rbx
    mov $VIRTIO, %ebx
    mov INTERRUPT_STATUS(%rbx), %eax
    mov %eax, interrupt_status(%rip)
    mov %eax, INTERRUPT_ACK(%rbx)
    mov $0x20, %al                      /* OCW2: non-specific EOI */
    out %al, $PIC1_CMD
    incl irq_count(%rip)
    pop %rbx
    pop %rax
    iretq

/* fail unless the flags say equal: the failed check's number becomes the exit status */
#define CHECK(n) mov $(n), %ecx; jne fail

user_main:
    push %rbx
    /* PICs: vectors 0x40/0x48, only IRQ 5 unmasked (the same on the in-kernel PIC). */
    mov $0x11, %al
    out %al, $PIC1_CMD
    out %al, $PIC2_CMD
    mov $0x40, %al
    out %al, $PIC1_DATA
    mov $0x48, %al
    out %al, $PIC2_DATA
    mov $0x04, %al
    out %al, $PIC1_DATA
    mov $0x02, %al
    out %al, $PIC2_DATA
    mov $0x01, %al
    out %al, $PIC1_DATA
    out %al, $PIC2_DATA
    mov $0xff, %al
    out %al, $PIC2_DATA
    mov $(0xff & ~(1 << VIRTIO_IRQ)), %al
    out %al, $PIC1_DATA

    /* Device identification (virtio 1.x 4.2.3.1.1). */
    mov $VIRTIO, %ebx
    cmpl $0x74726976, MAGIC(%rbx)
    CHECK(1)
    cmpl $2, VERSION(%rbx)
    CHECK(2)
    cmpl $2, DEVICE_ID(%rbx)
    CHECK(3)

    /* Initialisation (3.1.1): reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK. */
    movl $0, STATUS(%rbx)
    movl $S_ACKNOWLEDGE, STATUS(%rbx)
    movl $(S_ACKNOWLEDGE | S_DRIVER), STATUS(%rbx)
    movl $1, DEVICE_FEATURES_SEL(%rbx)
    testl $1, DEVICE_FEATURES(%rbx)     /* bit 32: VERSION_1 */
    setnz %al
    cmp $1, %al
    CHECK(4)
    movl $0, DRIVER_FEATURES_SEL(%rbx)
    movl $0, DRIVER_FEATURES(%rbx)
    movl $1, DRIVER_FEATURES_SEL(%rbx)
    movl $1, DRIVER_FEATURES(%rbx)
    movl $(S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK), STATUS(%rbx)
    mov STATUS(%rbx), %eax
    and $S_FEATURES_OK, %eax
    cmp $S_FEATURES_OK, %eax
    CHECK(5)

    /* Queue 0 (4.2.3.2). */
    movl $0, QUEUE_SEL(%rbx)
    cmpl $QSIZE, QUEUE_NUM_MAX(%rbx)
    setae %al
    cmp $1, %al
    CHECK(6)
    movl $QSIZE, QUEUE_NUM(%rbx)
    lea desc(%rip), %rax
    mov %eax, QUEUE_DESC(%rbx)
    shr $32, %rax
    mov %eax, QUEUE_DESC + 4(%rbx)
    lea avail(%rip), %rax
    mov %eax, QUEUE_DRIVER(%rbx)
    shr $32, %rax
    mov %eax, QUEUE_DRIVER + 4(%rbx)
    lea used(%rip), %rax
    mov %eax, QUEUE_DEVICE(%rbx)
    shr $32, %rax
    mov %eax, QUEUE_DEVICE + 4(%rbx)
    movl $1, QUEUE_READY(%rbx)
    movl $(S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK), STATUS(%rbx)

    cmpl $(SECTOR + 1), CONFIG_CAPACITY(%rbx)   /* capacity (low half), in sectors */
    setae %al
    cmp $1, %al
    CHECK(7)

    /* The pattern: byte i = i * 7 + 3. */
    lea pattern(%rip), %rdi
    xor %ecx, %ecx
1:  lea 3(%rcx, %rcx, 2), %eax
    lea (%eax, %ecx, 4), %eax
    mov %al, (%rdi, %rcx)
    inc %ecx
    cmp $512, %ecx
    jne 1b

    /* 1. OUT with interrupts disabled: poll, then open the window. */
    mov $T_OUT, %edi
    call submit
2:  pause
    cmpw $1, used_idx(%rip)
    jne 2b
    /* The device fills the used ring before it raises the line: wait until the PIC
     * has latched the request (IRR), so it is surely pending when the window opens. */
    mov $0x0a, %al                      /* OCW3: read IRR */
    out %al, $PIC1_CMD
10: in $PIC1_CMD, %al
    test $(1 << VIRTIO_IRQ), %al
    jz 10b
    cmpl $0, irq_count(%rip)
    CHECK(8)                            /* no interrupt while IF was clear */
    int3                                /* interrupts on */
3:  pause
    cmpl $1, irq_count(%rip)
    jb 3b
    mov $1, %edi
    call check_completion
    CHECK(9)

    /* 2. IN with interrupts enabled: wait for the interrupt. */
    mov $T_IN, %edi
    call submit
4:  pause
    cmpl $2, irq_count(%rip)
    jb 4b
    mov $2, %edi
    call check_completion
    CHECK(10)
    lea pattern(%rip), %rsi
    lea readback(%rip), %rdi
    mov $512, %ecx
    repe cmpsb
    CHECK(11)

    /* 3. FLUSH. */
    mov $T_FLUSH, %edi
    call submit
5:  pause
    cmpl $3, irq_count(%rip)
    jb 5b
    mov $3, %edi
    call check_completion
    CHECK(12)

    lea message(%rip), %rsi
    call puts
    xor %eax, %eax
    pop %rbx
    ret
fail:
    mov %ecx, %eax
    pop %rbx
    ret

/* Builds the chain for request type %edi at descriptor 0, makes it available and
 * notifies queue 0. Clobbers rax, rcx, rdx. */
submit:
    mov %edi, header(%rip)              /* type; reserved stays 0 */
    movq $SECTOR, header + 8(%rip)
    movb $0xff, status_byte(%rip)
    /* desc 0: the header, read by the device */
    lea header(%rip), %rax
    mov %rax, desc(%rip)
    movl $16, desc + 8(%rip)
    movw $DESC_NEXT, desc + 12(%rip)
    movw $1, desc + 14(%rip)
    /* desc 1: the data, read by the device (OUT) or written (IN) */
    lea pattern(%rip), %rax
    movw $DESC_NEXT, %dx
    cmp $T_IN, %edi
    jne 6f
    lea readback(%rip), %rax
    movw $(DESC_NEXT | DESC_WRITE), %dx
6:  mov %rax, desc + 16(%rip)
    movl $512, desc + 24(%rip)
    mov %dx, desc + 28(%rip)
    movw $2, desc + 30(%rip)
    cmp $T_FLUSH, %edi                  /* a flush has no data: header -> status */
    jne 7f
    movw $2, desc + 14(%rip)
7:  /* desc 2: the status byte, written by the device */
    lea status_byte(%rip), %rax
    mov %rax, desc + 32(%rip)
    movl $1, desc + 40(%rip)
    movw $DESC_WRITE, desc + 44(%rip)
    movw $0, desc + 46(%rip)
    /* avail.ring[idx % QSIZE] = 0, then idx + 1: x86 keeps the two stores in order */
    movzwl avail_idx(%rip), %ecx
    mov %ecx, %edx
    and $(QSIZE - 1), %edx
    lea avail_ring(%rip), %rax
    movw $0, (%rax, %rdx, 2)
    inc %ecx
    mov %cx, avail_idx(%rip)
    movl $0, QUEUE_NOTIFY(%rbx)         /* queue 0 */
    ret

/* Checks the request that made the used index %edi: it used descriptor 0, wrote the
 * data length + 1 (the status byte), status OK, and the interrupt said "used ring".
 * Sets ZF when all hold. */
check_completion:
    cmpw %di, used_idx(%rip)
    jne 8f
    lea -1(%rdi), %ecx
    and $(QSIZE - 1), %ecx
    lea used_ring(%rip), %rax
    cmpl $0, (%rax, %rcx, 8)            /* id */
    jne 8f
    mov $1, %edx                        /* len: the status byte... */
    cmpl $T_IN, header(%rip)
    jne 9f
    mov $513, %edx                      /* ...and the sector read */
9:  cmp %edx, 4(%rax, %rcx, 8)
    jne 8f
    cmpb $0, status_byte(%rip)          /* VIRTIO_BLK_S_OK */
    jne 8f
    testl $1, interrupt_status(%rip)
    setnz %al
    cmp $1, %al
8:  ret

message:
    .asciz "virtio-blk: sector 3 written, read back and flushed\n"

    .data
irq_count:
    .long 0
interrupt_status:
    .long 0
status_byte:
    .byte 0
    .p2align 4
header:
    .fill 16, 1, 0
    .bss
    .p2align 12
desc:
    .skip 16 * QSIZE
avail:                                  /* flags, idx, ring[QSIZE], used_event */
    .skip 2
avail_idx:
    .skip 2
avail_ring:
    .skip 2 * QSIZE + 2
    .p2align 2
used:                                   /* flags, idx, ring[QSIZE] of (id, len) */
    .skip 2
used_idx:
    .skip 2
used_ring:
    .skip 8 * QSIZE + 2
    .p2align 9
pattern:
    .skip 512
readback:
    .skip 512
    .text
