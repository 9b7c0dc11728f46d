//! The flattened device tree of the RISC-V `virt` machine.
//!
//! The tree describes the same machine as QEMU's `-M virt` (node names, compatible strings,
//! interrupt wiring), so stock OpenSBI and Linux find their devices without Tandem-specific
//! drivers. The addresses come from the caller: this module knows the shape, not the map.

use vm_fdt::FdtWriter;

/// What the device tree describes. Address pairs are `(base, size)` in guest physical memory.
#[derive(Clone, Debug)]
pub struct FdtConfig<'a> {
    pub harts: usize,
    pub ram_base: u64,
    pub ram_size: u64,
    pub cmdline: &'a str,
    /// `[start, end)` of the initrd in guest physical memory.
    pub initrd: Option<(u64, u64)>,
    /// `riscv,isa` of every hart, e.g. `rv64imafdc_zicsr_zifencei_sstc`.
    pub isa: &'a str,
    /// `mmu-type` of every hart, e.g. `riscv,sv48`.
    pub mmu_type: &'a str,
    /// Ticks per second of `mtime` (and of the `time` CSR).
    pub timebase_freq: u32,
    pub clint: (u64, u64),
    pub plic: (u64, u64),
    /// Number of PLIC interrupt sources (`riscv,ndev`); source 0 does not exist.
    pub plic_ndev: u32,
    pub uart: (u64, u64),
    pub uart_irq: u32,
    /// Input clock of the 16550 in Hz; Linux derives the divisor latch from it.
    pub uart_clock: u32,
    /// The SiFive test device (poweroff and reboot through syscon).
    pub test: (u64, u64),
    /// `(base, size, irq)` of each virtio-mmio transport present.
    pub virtio: Vec<(u64, u64, u32)>,
}

#[derive(Debug, thiserror::Error)]
pub enum FdtError {
    #[error("device tree needs 1 to {MAX_HARTS} harts, not {0}")]
    HartCount(usize),
    #[error("guest RAM at {base:#x} of size {size:#x} is empty or wraps")]
    Ram { base: u64, size: u64 },
    #[error("initrd [{start:#x}, {end:#x}) is empty or not inside guest RAM")]
    Initrd { start: u64, end: u64 },
    #[error("{what} uses interrupt {irq}, outside the PLIC's sources 1..={ndev}")]
    Irq {
        what: &'static str,
        irq: u32,
        ndev: u32,
    },
    #[error("cannot write the device tree")]
    Write(#[from] vm_fdt::Error),
}

/// Each hart has an M-mode and an S-mode context on the PLIC, and the PLIC has 15872
/// contexts at most.
pub const MAX_HARTS: usize = 15872 / 2;

/// Local interrupt numbers in `mip`/`mie` (the privileged spec's `mcause` codes) that the
/// CLINT and PLIC drive on each hart's interrupt controller.
const IRQ_M_SOFT: u32 = 3;
const IRQ_M_TIMER: u32 = 7;
const IRQ_S_EXT: u32 = 9;
const IRQ_M_EXT: u32 = 11;

/// Values the SiFive test device takes at offset 0: poweroff ("pass") and reset.
const TEST_POWEROFF: u32 = 0x5555;
const TEST_RESET: u32 = 0x7777;

/// Phandles are fixed by position so that any node can name any other before it is written.
struct Phandles;

impl Phandles {
    const PLIC: u32 = 1;
    const TEST: u32 = 2;

    fn cpu(hart: u32) -> u32 {
        3 + 2 * hart
    }

    fn intc(hart: u32) -> u32 {
        4 + 2 * hart
    }
}

/// Builds the device tree blob for `cfg`.
pub fn build(cfg: &FdtConfig) -> Result<Vec<u8>, FdtError> {
    let harts = validate(cfg)?;
    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_string("compatible", "riscv-virtio")?;
    fdt.property_string("model", "riscv-virtio,qemu")?;

    chosen(&mut fdt, cfg)?;
    let memory = fdt.begin_node(&format!("memory@{:x}", cfg.ram_base))?;
    fdt.property_string("device_type", "memory")?;
    reg(&mut fdt, (cfg.ram_base, cfg.ram_size))?;
    fdt.end_node(memory)?;
    cpus(&mut fdt, cfg, harts)?;
    soc(&mut fdt, cfg, harts)?;
    syscon(&mut fdt, "poweroff", "syscon-poweroff", TEST_POWEROFF)?;
    syscon(&mut fdt, "reboot", "syscon-reboot", TEST_RESET)?;

    fdt.end_node(root)?;
    Ok(fdt.finish()?)
}

/// Checks what would make a tree the guest misreads rather than one it rejects, and returns
/// the hart count as the cell type the tree uses.
fn validate(cfg: &FdtConfig) -> Result<u32, FdtError> {
    let harts = u32::try_from(cfg.harts)
        .ok()
        .filter(|&n| n >= 1 && cfg.harts <= MAX_HARTS)
        .ok_or(FdtError::HartCount(cfg.harts))?;
    let ram_end = cfg
        .ram_base
        .checked_add(cfg.ram_size)
        .filter(|_| cfg.ram_size > 0)
        .ok_or(FdtError::Ram {
            base: cfg.ram_base,
            size: cfg.ram_size,
        })?;
    if let Some((start, end)) = cfg.initrd {
        if start >= end || start < cfg.ram_base || end > ram_end {
            return Err(FdtError::Initrd { start, end });
        }
    }
    let irqs = std::iter::once(("the UART", cfg.uart_irq)).chain(
        cfg.virtio
            .iter()
            .map(|&(_, _, irq)| ("a virtio device", irq)),
    );
    for (what, irq) in irqs {
        if irq == 0 || irq > cfg.plic_ndev {
            return Err(FdtError::Irq {
                what,
                irq,
                ndev: cfg.plic_ndev,
            });
        }
    }
    Ok(harts)
}

/// A `reg` of one region with two address and two size cells.
fn reg(fdt: &mut FdtWriter, (base, size): (u64, u64)) -> Result<(), FdtError> {
    Ok(fdt.property_array_u64("reg", &[base, size])?)
}

fn chosen(fdt: &mut FdtWriter, cfg: &FdtConfig) -> Result<(), FdtError> {
    let node = fdt.begin_node("chosen")?;
    fdt.property_string("bootargs", cfg.cmdline)?;
    // OpenSBI and Linux's earlycon both pick their console from this path.
    fdt.property_string("stdout-path", &format!("/soc/serial@{:x}", cfg.uart.0))?;
    if let Some((start, end)) = cfg.initrd {
        // Two cells each: Linux reads these with the property's own length, and RAM may
        // lie above 4 GiB.
        fdt.property_u64("linux,initrd-start", start)?;
        fdt.property_u64("linux,initrd-end", end)?;
    }
    fdt.end_node(node)?;
    Ok(())
}

fn cpus(fdt: &mut FdtWriter, cfg: &FdtConfig, harts: u32) -> Result<(), FdtError> {
    let node = fdt.begin_node("cpus")?;
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    fdt.property_u32("timebase-frequency", cfg.timebase_freq)?;
    for hart in 0..harts {
        let cpu = fdt.begin_node(&format!("cpu@{hart:x}"))?;
        fdt.property_phandle(Phandles::cpu(hart))?;
        fdt.property_string("device_type", "cpu")?;
        fdt.property_u32("reg", hart)?;
        fdt.property_string("status", "okay")?;
        fdt.property_string("compatible", "riscv")?;
        fdt.property_string("riscv,isa", cfg.isa)?;
        fdt.property_string("mmu-type", cfg.mmu_type)?;

        // The hart-local controller that the CLINT and PLIC lines below point at.
        let intc = fdt.begin_node("interrupt-controller")?;
        fdt.property_u32("#interrupt-cells", 1)?;
        // dtc's interrupt_provider check wants it; nothing is addressed through this node.
        fdt.property_u32("#address-cells", 0)?;
        fdt.property_null("interrupt-controller")?;
        fdt.property_string("compatible", "riscv,cpu-intc")?;
        fdt.property_phandle(Phandles::intc(hart))?;
        fdt.end_node(intc)?;
        fdt.end_node(cpu)?;
    }

    // One cluster of single-thread cores: Linux builds its scheduler topology from this
    // and otherwise guesses the same thing with a warning.
    let map = fdt.begin_node("cpu-map")?;
    let cluster = fdt.begin_node("cluster0")?;
    for hart in 0..harts {
        let core = fdt.begin_node(&format!("core{hart}"))?;
        fdt.property_u32("cpu", Phandles::cpu(hart))?;
        fdt.end_node(core)?;
    }
    fdt.end_node(cluster)?;
    fdt.end_node(map)?;
    fdt.end_node(node)?;
    Ok(())
}

/// `interrupts-extended` pairs (hart controller, local interrupt) for every hart, `per_hart`
/// in order for each.
fn per_hart_lines(harts: u32, per_hart: &[u32]) -> Vec<u32> {
    (0..harts)
        .flat_map(|hart| {
            per_hart
                .iter()
                .flat_map(move |&irq| [Phandles::intc(hart), irq])
        })
        .collect()
}

fn soc(fdt: &mut FdtWriter, cfg: &FdtConfig, harts: u32) -> Result<(), FdtError> {
    let node = fdt.begin_node("soc")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_string("compatible", "simple-bus")?;
    // Empty: bus addresses are CPU physical addresses.
    fdt.property_null("ranges")?;

    let clint = fdt.begin_node(&format!("clint@{:x}", cfg.clint.0))?;
    fdt.property_string_list(
        "compatible",
        vec!["sifive,clint0".into(), "riscv,clint0".into()],
    )?;
    reg(fdt, cfg.clint)?;
    let lines = per_hart_lines(harts, &[IRQ_M_SOFT, IRQ_M_TIMER]);
    fdt.property_array_u32("interrupts-extended", &lines)?;
    fdt.end_node(clint)?;

    let plic = fdt.begin_node(&format!("plic@{:x}", cfg.plic.0))?;
    fdt.property_string_list(
        "compatible",
        vec!["sifive,plic-1.0.0".into(), "riscv,plic0".into()],
    )?;
    reg(fdt, cfg.plic)?;
    fdt.property_u32("#interrupt-cells", 1)?;
    fdt.property_u32("#address-cells", 0)?;
    fdt.property_null("interrupt-controller")?;
    fdt.property_u32("riscv,ndev", cfg.plic_ndev)?;
    // The order of these pairs numbers the PLIC's contexts: hart N's M-mode context is 2N
    // and its S-mode context 2N + 1, which is how the PLIC model must lay them out too.
    let lines = per_hart_lines(harts, &[IRQ_M_EXT, IRQ_S_EXT]);
    fdt.property_array_u32("interrupts-extended", &lines)?;
    fdt.property_phandle(Phandles::PLIC)?;
    fdt.end_node(plic)?;

    let serial = fdt.begin_node(&format!("serial@{:x}", cfg.uart.0))?;
    fdt.property_string("compatible", "ns16550a")?;
    reg(fdt, cfg.uart)?;
    fdt.property_u32("clock-frequency", cfg.uart_clock)?;
    fdt.property_u32("interrupt-parent", Phandles::PLIC)?;
    fdt.property_u32("interrupts", cfg.uart_irq)?;
    fdt.end_node(serial)?;

    let test = fdt.begin_node(&format!("test@{:x}", cfg.test.0))?;
    fdt.property_string_list(
        "compatible",
        vec![
            "sifive,test1".into(),
            "sifive,test0".into(),
            "syscon".into(),
        ],
    )?;
    reg(fdt, cfg.test)?;
    fdt.property_phandle(Phandles::TEST)?;
    fdt.end_node(test)?;

    for &(base, size, irq) in &cfg.virtio {
        let dev = fdt.begin_node(&format!("virtio_mmio@{base:x}"))?;
        fdt.property_string("compatible", "virtio,mmio")?;
        reg(fdt, (base, size))?;
        fdt.property_u32("interrupt-parent", Phandles::PLIC)?;
        fdt.property_u32("interrupts", irq)?;
        fdt.end_node(dev)?;
    }
    fdt.end_node(node)?;
    Ok(())
}

/// A poweroff or reboot node: Linux's syscon drivers write `value` into the test device.
fn syscon(fdt: &mut FdtWriter, name: &str, compatible: &str, value: u32) -> Result<(), FdtError> {
    let node = fdt.begin_node(name)?;
    fdt.property_string("compatible", compatible)?;
    fdt.property_u32("regmap", Phandles::TEST)?;
    fdt.property_u32("offset", 0)?;
    fdt.property_u32("value", value)?;
    fdt.end_node(node)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io::Write;
    use std::process::{Command, Stdio};

    fn config(harts: usize) -> FdtConfig<'static> {
        FdtConfig {
            harts,
            ram_base: 0x8000_0000,
            // Above 4 GiB, so both cells of the size matter.
            ram_size: 0x1_8000_0000,
            cmdline: "console=ttyS0 earlycon root=/dev/vda rw",
            initrd: Some((0x8800_0000, 0x8812_3456)),
            isa: "rv64imafdc_zicsr_zifencei_zba_zbb_zbs_sstc",
            mmu_type: "riscv,sv48",
            timebase_freq: 10_000_000,
            clint: (0x200_0000, 0x1_0000),
            plic: (0xc00_0000, 0x60_0000),
            plic_ndev: 95,
            uart: (0x1000_0000, 0x100),
            uart_irq: 10,
            uart_clock: 3_686_400,
            test: (0x10_0000, 0x1000),
            virtio: vec![(0x1000_1000, 0x1000, 1), (0x1000_2000, 0x1000, 2)],
        }
    }

    // A decoder for the blob written from the specification, independent of vm-fdt and
    // of dtc, so the content checks run even where dtc is missing.

    const FDT_MAGIC: u32 = 0xd00d_feed;
    const FDT_BEGIN_NODE: u32 = 1;
    const FDT_END_NODE: u32 = 2;
    const FDT_PROP: u32 = 3;
    const FDT_NOP: u32 = 4;
    const FDT_END: u32 = 9;

    #[derive(Debug, PartialEq)]
    struct Node {
        name: String,
        props: Vec<(String, Vec<u8>)>,
        children: Vec<Node>,
    }

    fn be32(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
    }

    fn cstr(b: &[u8], at: usize) -> &str {
        let len = b[at..]
            .iter()
            .position(|&c| c == 0)
            .expect("unterminated string");
        std::str::from_utf8(&b[at..at + len]).expect("non-UTF-8 string")
    }

    fn decode(blob: &[u8]) -> Node {
        assert_eq!(be32(blob, 0), FDT_MAGIC);
        assert_eq!(be32(blob, 4) as usize, blob.len(), "totalsize");
        assert_eq!(be32(blob, 20), 17, "version");
        let (off_struct, size_struct) = (be32(blob, 8) as usize, be32(blob, 36) as usize);
        let (off_strings, size_strings) = (be32(blob, 12) as usize, be32(blob, 32) as usize);
        let structure = &blob[off_struct..off_struct + size_struct];
        let strings = &blob[off_strings..off_strings + size_strings];
        let mut pos = 0;
        let root = decode_node(structure, strings, &mut pos);
        while be32(structure, pos) == FDT_NOP {
            pos += 4;
        }
        assert_eq!(be32(structure, pos), FDT_END);
        assert_eq!(pos + 4, structure.len(), "data after FDT_END");
        root
    }

    fn decode_node(s: &[u8], strings: &[u8], pos: &mut usize) -> Node {
        assert_eq!(be32(s, *pos), FDT_BEGIN_NODE);
        let name = cstr(s, *pos + 4).to_owned();
        *pos = (*pos + 4 + name.len() + 1).next_multiple_of(4);
        let mut node = Node {
            name,
            props: Vec::new(),
            children: Vec::new(),
        };
        loop {
            let token = be32(s, *pos);
            match token {
                FDT_PROP => {
                    assert!(node.children.is_empty(), "property after a subnode");
                    let len = be32(s, *pos + 4) as usize;
                    let name = cstr(strings, be32(s, *pos + 8) as usize).to_owned();
                    let data = s[*pos + 12..*pos + 12 + len].to_vec();
                    *pos = (*pos + 12 + len).next_multiple_of(4);
                    node.props.push((name, data));
                }
                FDT_BEGIN_NODE => node.children.push(decode_node(s, strings, pos)),
                FDT_END_NODE => {
                    *pos += 4;
                    return node;
                }
                FDT_NOP => *pos += 4,
                _ => panic!("bad token {token:#x} at {pos}"),
            }
        }
    }

    impl Node {
        fn at(&self, path: &str) -> Option<&Node> {
            path.split('/')
                .filter(|p| !p.is_empty())
                .try_fold(self, |n, part| n.children.iter().find(|c| c.name == part))
        }

        fn node(&self, path: &str) -> &Node {
            self.at(path).unwrap_or_else(|| panic!("no node {path}"))
        }

        fn prop(&self, name: &str) -> Option<&[u8]> {
            self.props
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_slice())
        }

        fn raw(&self, name: &str) -> &[u8] {
            self.prop(name)
                .unwrap_or_else(|| panic!("{} has no {name}", self.name))
        }

        fn cells(&self, name: &str) -> Vec<u32> {
            let raw = self.raw(name);
            assert_eq!(raw.len() % 4, 0, "{}: {name} is not cells", self.name);
            raw.chunks(4).map(|c| be32(c, 0)).collect()
        }

        fn cell(&self, name: &str) -> u32 {
            let cells = self.cells(name);
            assert_eq!(cells.len(), 1, "{}: {name}", self.name);
            cells[0]
        }

        fn strs(&self, name: &str) -> Vec<&str> {
            let raw = self.raw(name);
            assert_eq!(
                raw.last(),
                Some(&0),
                "{}: {name} is not a string",
                self.name
            );
            raw[..raw.len() - 1]
                .split(|&b| b == 0)
                .map(|s| std::str::from_utf8(s).unwrap())
                .collect()
        }

        fn str(&self, name: &str) -> &str {
            let list = self.strs(name);
            assert_eq!(list.len(), 1, "{}: {name}", self.name);
            list[0]
        }

        /// Every node with its path, parents before children.
        fn walk<'n>(&'n self, path: &str, out: &mut Vec<(String, &'n Node)>) {
            out.push((path.to_owned(), self));
            for child in &self.children {
                child.walk(
                    &format!("{}/{}", path.trim_end_matches('/'), child.name),
                    out,
                );
            }
        }
    }

    /// The reg of one region in a two-cell parent, as (base, size).
    fn region(node: &Node) -> (u64, u64) {
        let c = node.cells("reg");
        assert_eq!(c.len(), 4, "{}: reg", node.name);
        let join = |hi: u32, lo: u32| (u64::from(hi) << 32) | u64::from(lo);
        (join(c[0], c[1]), join(c[2], c[3]))
    }

    /// Checks the decoded tree against `cfg`: every property a guest relies on, the
    /// interrupt wiring, and that every phandle used names a node.
    fn check(tree: &Node, cfg: &FdtConfig) {
        assert_eq!(tree.name, "");
        assert_eq!(tree.cells("#address-cells"), [2]);
        assert_eq!(tree.cells("#size-cells"), [2]);
        assert_eq!(tree.str("compatible"), "riscv-virtio");
        assert_eq!(tree.str("model"), "riscv-virtio,qemu");

        let mut nodes = Vec::new();
        tree.walk("/", &mut nodes);
        let mut phandles = HashMap::new();
        for (path, node) in &nodes {
            if node.prop("phandle").is_some() {
                let old = phandles.insert(node.cell("phandle"), path.clone());
                assert!(old.is_none(), "phandle of {path} is also {old:?}'s");
            }
        }
        let phandle_of = |path: &str| tree.node(path).cell("phandle");

        let chosen = tree.node("/chosen");
        assert_eq!(chosen.str("bootargs"), cfg.cmdline, "bootargs");
        let stdout = chosen.str("stdout-path");
        assert_eq!(stdout, format!("/soc/serial@{:x}", cfg.uart.0));
        assert_eq!(tree.node(stdout).str("compatible"), "ns16550a");
        match cfg.initrd {
            Some((start, end)) => {
                assert_eq!(chosen.cells("linux,initrd-start"), split(start));
                assert_eq!(chosen.cells("linux,initrd-end"), split(end));
            }
            None => {
                assert!(chosen.prop("linux,initrd-start").is_none());
                assert!(chosen.prop("linux,initrd-end").is_none());
            }
        }

        let memory = tree.node(&format!("/memory@{:x}", cfg.ram_base));
        assert_eq!(memory.str("device_type"), "memory");
        assert_eq!(region(memory), (cfg.ram_base, cfg.ram_size));

        let cpus = tree.node("/cpus");
        assert_eq!(cpus.cell("#address-cells"), 1);
        assert_eq!(cpus.cell("#size-cells"), 0);
        assert_eq!(cpus.cell("timebase-frequency"), cfg.timebase_freq);
        let cpu_nodes: Vec<_> = cpus
            .children
            .iter()
            .filter(|c| c.name.starts_with("cpu@"))
            .collect();
        assert_eq!(cpu_nodes.len(), cfg.harts);
        let mut intcs = Vec::new();
        for (hart, cpu) in cpu_nodes.iter().enumerate() {
            assert_eq!(cpu.name, format!("cpu@{hart:x}"));
            assert_eq!(cpu.cell("reg") as usize, hart);
            assert_eq!(cpu.str("device_type"), "cpu");
            assert_eq!(cpu.str("status"), "okay");
            assert_eq!(cpu.str("compatible"), "riscv");
            assert_eq!(cpu.str("riscv,isa"), cfg.isa);
            assert_eq!(cpu.str("mmu-type"), cfg.mmu_type);
            let intc = &cpu.children[0];
            assert_eq!(intc.name, "interrupt-controller");
            assert_eq!(intc.str("compatible"), "riscv,cpu-intc");
            assert_eq!(intc.cell("#interrupt-cells"), 1);
            assert_eq!(intc.raw("interrupt-controller"), b"");
            intcs.push(intc.cell("phandle"));
        }
        for (hart, cpu) in cpu_nodes.iter().enumerate() {
            let core = tree.node(&format!("/cpus/cpu-map/cluster0/core{hart}"));
            assert_eq!(core.cell("cpu"), cpu.cell("phandle"));
        }

        let soc = tree.node("/soc");
        assert_eq!(soc.str("compatible"), "simple-bus");
        assert_eq!(soc.raw("ranges"), b"");
        assert_eq!(soc.cells("#address-cells"), [2]);
        assert_eq!(soc.cells("#size-cells"), [2]);

        // Hart N's lines, in order, on its own controller.
        let wiring =
            |a: u32, b: u32| -> Vec<u32> { intcs.iter().flat_map(|&i| [i, a, i, b]).collect() };
        let clint = tree.node(&format!("/soc/clint@{:x}", cfg.clint.0));
        assert_eq!(clint.strs("compatible"), ["sifive,clint0", "riscv,clint0"]);
        assert_eq!(region(clint), cfg.clint);
        assert_eq!(clint.cells("interrupts-extended").len(), 4 * cfg.harts);
        assert_eq!(clint.cells("interrupts-extended"), wiring(3, 7));

        let plic_path = format!("/soc/plic@{:x}", cfg.plic.0);
        let plic = tree.node(&plic_path);
        assert_eq!(
            plic.strs("compatible"),
            ["sifive,plic-1.0.0", "riscv,plic0"]
        );
        assert_eq!(region(plic), cfg.plic);
        assert_eq!(plic.cell("#interrupt-cells"), 1);
        assert_eq!(plic.cell("#address-cells"), 0);
        assert_eq!(plic.raw("interrupt-controller"), b"");
        assert_eq!(plic.cell("riscv,ndev"), cfg.plic_ndev);
        assert_eq!(plic.cells("interrupts-extended").len(), 4 * cfg.harts);
        assert_eq!(plic.cells("interrupts-extended"), wiring(11, 9));
        let plic_phandle = phandle_of(&plic_path);

        let serial = tree.node(stdout);
        assert_eq!(region(serial), cfg.uart);
        assert_eq!(serial.cell("clock-frequency"), cfg.uart_clock);
        assert_eq!(serial.cell("interrupt-parent"), plic_phandle);
        assert_eq!(serial.cell("interrupts"), cfg.uart_irq);

        let test_path = format!("/soc/test@{:x}", cfg.test.0);
        let test = tree.node(&test_path);
        assert_eq!(
            test.strs("compatible"),
            ["sifive,test1", "sifive,test0", "syscon"]
        );
        assert_eq!(region(test), cfg.test);
        for (path, compatible, value) in [
            ("/poweroff", "syscon-poweroff", 0x5555),
            ("/reboot", "syscon-reboot", 0x7777),
        ] {
            let node = tree.node(path);
            assert_eq!(node.str("compatible"), compatible);
            assert_eq!(node.cell("regmap"), phandle_of(&test_path));
            assert_eq!(node.cell("offset"), 0);
            assert_eq!(node.cell("value"), value);
        }

        let virtio: Vec<_> = soc
            .children
            .iter()
            .filter(|c| c.name.starts_with("virtio_mmio@"))
            .collect();
        assert_eq!(virtio.len(), cfg.virtio.len());
        for (node, &(base, size, irq)) in virtio.iter().zip(&cfg.virtio) {
            assert_eq!(node.name, format!("virtio_mmio@{base:x}"));
            assert_eq!(node.str("compatible"), "virtio,mmio");
            assert_eq!(region(node), (base, size));
            assert_eq!(node.cell("interrupt-parent"), plic_phandle);
            assert_eq!(node.cell("interrupts"), irq);
        }

        // Every reference names an existing node, and every unit address is the node's reg.
        for (path, node) in &nodes {
            let mut refs = Vec::new();
            for name in ["interrupt-parent", "regmap", "cpu"] {
                if node.prop(name).is_some() {
                    refs.push(node.cell(name));
                }
            }
            if node.prop("interrupts-extended").is_some() {
                refs.extend(node.cells("interrupts-extended").iter().step_by(2));
            }
            for r in refs {
                assert!(phandles.contains_key(&r), "{path} refers to phandle {r}");
            }
            if let Some((_, unit)) = node.name.split_once('@') {
                let unit = u64::from_str_radix(unit, 16).unwrap();
                let reg = node.cells("reg");
                let addr = if reg.len() == 1 {
                    u64::from(reg[0])
                } else {
                    region(node).0
                };
                assert_eq!(unit, addr, "{path}: unit address");
            }
        }
    }

    fn split(v: u64) -> [u32; 2] {
        [(v >> 32) as u32, v as u32]
    }

    /// `dtc` run on `input`, or None when it is not installed.
    fn dtc(args: &[&str], input: &[u8]) -> Option<(Vec<u8>, String)> {
        let spawned = Command::new("dtc")
            .args(args)
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => panic!("cannot run dtc: {e}"),
        };
        // dtc reads all its input before it writes, so this cannot fill both pipes.
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "dtc {args:?} failed: {stderr}");
        Some((out.stdout, stderr))
    }

    /// dtc's view: it decodes the blob, its checks (phandle references, interrupt cells,
    /// unit addresses, bus nodes) pass without a warning, and compiling its source back
    /// gives the same tree.
    fn check_with_dtc(blob: &[u8], cfg: &FdtConfig) {
        let Some((dts, warnings)) = dtc(&["-I", "dtb", "-O", "dts"], blob) else {
            eprintln!("dtc is not installed: checked with the built-in decoder only");
            return;
        };
        assert_eq!(warnings, "", "dtc warns about the tree");
        let dts = String::from_utf8(dts).unwrap();
        assert!(
            dts.contains(&format!("bootargs = \"{}\";", cfg.cmdline)),
            "{dts}"
        );
        assert!(
            dts.contains("stdout-path = \"/soc/serial@10000000\";"),
            "{dts}"
        );
        assert_eq!(dts.matches("device_type = \"cpu\";").count(), cfg.harts);
        assert!(dts.contains("compatible = \"sifive,plic-1.0.0\\0riscv,plic0\";"));
        let (back, _) = dtc(&["-I", "dts", "-O", "dtb"], dts.as_bytes()).unwrap();
        assert_eq!(decode(&back), decode(blob), "dtc round trip");
    }

    #[test]
    fn one_hart() {
        let cfg = config(1);
        let blob = build(&cfg).unwrap();
        check(&decode(&blob), &cfg);
        check_with_dtc(&blob, &cfg);
    }

    #[test]
    fn four_harts() {
        let cfg = config(4);
        let blob = build(&cfg).unwrap();
        let tree = decode(&blob);
        check(&tree, &cfg);
        check_with_dtc(&blob, &cfg);
        // Context order M, S per hart, on distinct controllers.
        let lines = tree.node("/soc/plic@c000000").cells("interrupts-extended");
        let intc3 = tree
            .node("/cpus/cpu@3/interrupt-controller")
            .cell("phandle");
        assert_eq!(lines[12..], [intc3, 11, intc3, 9]);
        assert_ne!(lines[0], intc3);
    }

    #[test]
    fn without_initrd_or_virtio() {
        let cfg = FdtConfig {
            initrd: None,
            virtio: Vec::new(),
            ..config(2)
        };
        let blob = build(&cfg).unwrap();
        check(&decode(&blob), &cfg);
        check_with_dtc(&blob, &cfg);
    }

    /// The checker itself must notice a broken tree, or the tests above prove nothing.
    #[test]
    #[should_panic(expected = "bootargs")]
    fn checker_catches_wrong_content() {
        let built = config(1);
        let expected = FdtConfig {
            cmdline: "console=hvc0",
            ..config(1)
        };
        check(&decode(&build(&built).unwrap()), &expected);
    }

    #[test]
    fn rejects_bad_configs() {
        let bad = |cfg: FdtConfig| build(&cfg).unwrap_err();
        assert!(matches!(bad(config(0)), FdtError::HartCount(0)));
        assert!(matches!(bad(config(MAX_HARTS + 1)), FdtError::HartCount(_)));
        assert!(matches!(
            bad(FdtConfig {
                ram_size: 0,
                ..config(1)
            }),
            FdtError::Ram { .. }
        ));
        for initrd in [
            (0x1000, 0x2000),
            (0x9000_0000, 0x9000_0000),
            (0x8000_0000, u64::MAX),
        ] {
            let err = bad(FdtConfig {
                initrd: Some(initrd),
                ..config(1)
            });
            assert!(matches!(err, FdtError::Initrd { .. }), "{initrd:x?}");
        }
        assert!(matches!(
            bad(FdtConfig {
                uart_irq: 0,
                ..config(1)
            }),
            FdtError::Irq { irq: 0, .. }
        ));
        assert!(matches!(
            bad(FdtConfig {
                virtio: vec![(0x1000_1000, 0x1000, 96)],
                ..config(1)
            }),
            FdtError::Irq { irq: 96, .. }
        ));
        assert!(matches!(
            bad(FdtConfig {
                cmdline: "a\0b",
                ..config(1)
            }),
            FdtError::Write(vm_fdt::Error::InvalidString)
        ));
    }
}
