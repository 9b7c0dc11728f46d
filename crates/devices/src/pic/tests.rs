use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

const MASTER: bool = false;
const SLAVE: bool = true;
const CMD: u64 = 0;
const DATA: u64 = 1;

/// Programs both chips as Linux and the test guests do: edge-triggered, cascade, 8086
/// mode, master vectors 0x20-0x27, slave 0x28-0x2f, everything masked.
fn initialised() -> DualPic {
    let mut pic = DualPic::new();
    for (chip, base, icw3) in [(MASTER, 0x20, 0x04), (SLAVE, 0x28, 0x02)] {
        pic.write(chip, CMD, 0x11); // ICW1: edge, cascade, ICW4 needed
        pic.write(chip, DATA, base); // ICW2
        pic.write(chip, DATA, icw3); // ICW3
        pic.write(chip, DATA, 0x01); // ICW4: 8086 mode
        pic.write(chip, DATA, 0xff); // OCW1: all masked
    }
    pic
}

fn read_isr(pic: &mut DualPic, chip: bool) -> u8 {
    pic.write(chip, CMD, 0x0b);
    pic.read(chip, CMD)
}

fn read_irr(pic: &mut DualPic, chip: bool) -> u8 {
    pic.write(chip, CMD, 0x0a);
    pic.read(chip, CMD)
}

fn eoi(pic: &mut DualPic, chip: bool) {
    pic.write(chip, CMD, 0x20);
}

#[test]
fn init_sequence_sets_vector_base_and_clears_the_mask() {
    let mut pic = DualPic::new();
    pic.write(MASTER, DATA, 0x55); // OCW1 before init
    assert_eq!(pic.read(MASTER, DATA), 0x55);
    pic.write(MASTER, CMD, 0x11);
    assert_eq!(pic.read(MASTER, DATA), 0, "ICW1 clears the mask");
    pic.write(MASTER, DATA, 0x47); // ICW2: low 3 bits ignored
    pic.write(MASTER, DATA, 0x04);
    pic.write(MASTER, DATA, 0x01);
    // The next data write is OCW1 again, not another ICW.
    pic.write(MASTER, DATA, 0xef);
    assert_eq!(pic.read(MASTER, DATA), 0xef);
    pic.raise(4);
    assert!(pic.output());
    assert_eq!(pic.acknowledge(), Some(0x44));
    assert!(!pic.output());
}

#[test]
fn single_mode_without_icw4_takes_only_icw2() {
    let mut pic = DualPic::new();
    pic.write(MASTER, CMD, 0x12); // single, no ICW4
    pic.write(MASTER, DATA, 0x30);
    pic.write(MASTER, DATA, 0xfe); // already OCW1
    assert_eq!(pic.read(MASTER, DATA), 0xfe);
    pic.raise(0);
    assert_eq!(pic.acknowledge(), Some(0x30));
}

#[test]
fn masked_requests_wait_in_irr_until_unmasked() {
    let mut pic = initialised();
    pic.raise(3);
    assert!(!pic.output());
    assert_eq!(pic.acknowledge(), None);
    assert_eq!(read_irr(&mut pic, MASTER), 0x08);
    pic.write(MASTER, DATA, 0xf7);
    assert!(pic.output());
    assert_eq!(pic.acknowledge(), Some(0x23));
    assert_eq!(read_irr(&mut pic, MASTER), 0);
    assert_eq!(read_isr(&mut pic, MASTER), 0x08);
}

#[test]
fn lower_irq_numbers_win_and_nest_over_higher_ones() {
    let mut pic = initialised();
    pic.write(MASTER, DATA, 0x00);
    pic.raise(5);
    pic.raise(3);
    assert_eq!(pic.acknowledge(), Some(0x23));
    // IRQ 5 waits while IRQ 3 is in service...
    assert!(!pic.output());
    // ... but IRQ 1 has higher priority and nests.
    pic.raise(1);
    assert_eq!(pic.acknowledge(), Some(0x21));
    assert_eq!(read_isr(&mut pic, MASTER), 0x0a);
    // A non-specific EOI ends the highest-priority one in service: IRQ 1.
    eoi(&mut pic, MASTER);
    assert_eq!(read_isr(&mut pic, MASTER), 0x08);
    assert!(!pic.output());
    eoi(&mut pic, MASTER);
    assert_eq!(pic.acknowledge(), Some(0x25));
}

#[test]
fn specific_eoi_ends_the_named_level() {
    let mut pic = initialised();
    pic.write(MASTER, DATA, 0x00);
    pic.raise(6);
    assert_eq!(pic.acknowledge(), Some(0x26));
    pic.raise(0);
    assert_eq!(pic.acknowledge(), Some(0x20));
    pic.write(MASTER, CMD, 0x60 | 6); // specific EOI, level 6
    assert_eq!(read_isr(&mut pic, MASTER), 0x01);
    pic.write(MASTER, CMD, 0x60);
    assert_eq!(read_isr(&mut pic, MASTER), 0);
}

#[test]
fn an_edge_while_in_service_is_delivered_after_eoi() {
    let mut pic = initialised();
    pic.write(MASTER, DATA, 0xef);
    pic.raise(4);
    assert_eq!(pic.acknowledge(), Some(0x24));
    pic.raise(4);
    assert!(!pic.output(), "same level in service");
    eoi(&mut pic, MASTER);
    assert_eq!(pic.acknowledge(), Some(0x24));
}

#[test]
fn slave_interrupts_cascade_through_irq2() {
    let mut pic = initialised();
    pic.write(SLAVE, DATA, 0xfb); // unmask IRQ 10
    pic.raise(10);
    assert!(!pic.output(), "the master's cascade input is still masked");
    pic.write(MASTER, DATA, 0xfb);
    assert!(pic.output());
    assert_eq!(pic.acknowledge(), Some(0x2a));
    assert_eq!(read_isr(&mut pic, MASTER), 0x04);
    assert_eq!(read_isr(&mut pic, SLAVE), 0x04);
    // Lower-priority slave requests wait for the slave's EOI and then the master's.
    pic.write(SLAVE, DATA, 0x00);
    pic.raise(15);
    assert!(!pic.output());
    eoi(&mut pic, SLAVE);
    assert!(!pic.output(), "the master's IR2 is still in service");
    eoi(&mut pic, MASTER);
    assert_eq!(pic.acknowledge(), Some(0x2f));
}

#[test]
fn irq2_is_redirected_to_irq9() {
    let mut pic = initialised();
    pic.write(MASTER, DATA, 0xfb);
    pic.write(SLAVE, DATA, 0xfd);
    pic.raise(2);
    assert_eq!(pic.acknowledge(), Some(0x29));
}

#[test]
fn special_fully_nested_mode_lets_the_slave_nest() {
    let mut pic = initialised();
    pic.write(MASTER, CMD, 0x11);
    pic.write(MASTER, DATA, 0x20);
    pic.write(MASTER, DATA, 0x04);
    pic.write(MASTER, DATA, 0x11); // ICW4: 8086, special fully nested
    pic.write(MASTER, DATA, 0x00);
    pic.write(SLAVE, DATA, 0x00);
    pic.raise(12);
    assert_eq!(pic.acknowledge(), Some(0x2c));
    pic.raise(9);
    assert_eq!(pic.acknowledge(), Some(0x29), "higher slave level nests");
}

#[test]
fn auto_eoi_leaves_nothing_in_service() {
    let mut pic = DualPic::new();
    pic.write(MASTER, CMD, 0x13); // single, ICW4
    pic.write(MASTER, DATA, 0x40);
    pic.write(MASTER, DATA, 0x03); // 8086, auto-EOI
    pic.write(MASTER, DATA, 0x00);
    pic.raise(1);
    assert_eq!(pic.acknowledge(), Some(0x41));
    assert_eq!(read_isr(&mut pic, MASTER), 0);
    pic.raise(1);
    assert_eq!(pic.acknowledge(), Some(0x41));
}

#[test]
fn poll_command_acknowledges_the_highest_request() {
    let mut pic = initialised();
    pic.write(MASTER, DATA, 0x00);
    pic.raise(7);
    pic.write(MASTER, CMD, 0x0c); // OCW3: poll
    assert_eq!(pic.read(MASTER, CMD), 0x87);
    assert_eq!(read_isr(&mut pic, MASTER), 0x80);
    pic.write(MASTER, CMD, 0x0c);
    assert_eq!(pic.read(MASTER, CMD), 0, "nothing else pending");
}

#[test]
fn shared_pic_reports_output_rises_and_serves_ports() {
    let rises = Arc::new(AtomicUsize::new(0));
    let counter = rises.clone();
    let pic = Pic::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let [(master, master_base), (slave, slave_base)] = pic.port_devices();
    assert_eq!((master_base, slave_base), (MASTER_PORT, SLAVE_PORT));
    let out = |dev: &SharedDevice, offset, value| vm_core::bus::lock(dev).write(offset, &[value]);
    for (dev, base) in [(&master, 0x40), (&slave, 0x48)] {
        out(dev, CMD, 0x11);
        out(dev, DATA, base);
        out(dev, DATA, 0x04);
        out(dev, DATA, 0x01);
    }
    out(&master, DATA, 0xef);
    let com1 = pic.line(4);
    com1.trigger().unwrap();
    assert_eq!(rises.load(Ordering::SeqCst), 1);
    com1.trigger().unwrap();
    assert_eq!(rises.load(Ordering::SeqCst), 1, "output already high");
    assert!(pic.has_interrupt());
    assert_eq!(pic.acknowledge(), Some(0x44));
    let mut isr = [0u8];
    out(&master, CMD, 0x0b);
    vm_core::bus::lock(&master).read(CMD, &mut isr);
    assert_eq!(isr, [0x10]);
    // The second edge came while IRQ 4 was requested: it was the same request.
    out(&master, CMD, 0x20);
    assert!(!pic.has_interrupt());
    com1.trigger().unwrap();
    assert_eq!(rises.load(Ordering::SeqCst), 2);
}
