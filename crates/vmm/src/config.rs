//! What the user asked for, validated before anything is built.

use std::path::PathBuf;

/// Where the 16550's output goes and where its input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerialConfig {
    /// Guest console on Tandem's stdin/stdout (raw terminal when stdin is a tty).
    Stdio,
    /// Output appended to a file; no input.
    File(PathBuf),
    /// Output discarded.
    None,
}

impl std::str::FromStr for SerialConfig {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "stdio" => Ok(Self::Stdio),
            "none" => Ok(Self::None),
            _ => match s.strip_prefix("file:") {
                Some(path) if !path.is_empty() => Ok(Self::File(path.into())),
                _ => Err(format!(
                    "invalid serial backend '{s}': expected stdio, file:PATH or none"
                )),
            },
        }
    }
}

/// Where the x86 machine's interrupt controllers live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IrqchipMode {
    /// KVM's in-kernel PIC, IOAPIC, local APICs and PIT: interrupts, `hlt`, timers and
    /// EOIs never leave the kernel.
    #[default]
    Kernel,
    /// Tandem's 8259A PIC model (one vCPU, no APICs, no PIT): Tandem injects each
    /// interrupt with KVM_INTERRUPT, through interrupt-window exits.
    Userspace,
}

impl std::str::FromStr for IrqchipMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "kernel" => Ok(Self::Kernel),
            "userspace" => Ok(Self::Userspace),
            _ => Err(format!(
                "invalid irqchip '{s}': expected kernel or userspace"
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct VmConfig {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub cmdline: String,
    pub memory: u64,
    pub cpus: u8,
    pub serial: SerialConfig,
    pub io: crate::IoConfig,
    pub irqchip: IrqchipMode,
}

/// Parses a memory size as QEMU's `-m` does: a number of MiB, or a number with a
/// K/M/G/T suffix (optionally followed by B or iB).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, suffix) = s.split_at(split);
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("invalid size '{s}': expected e.g. 256M or 1G"))?;
    let shift = match suffix.trim_end_matches("iB").trim_end_matches('B') {
        "" | "M" | "m" => 20,
        "K" | "k" => 10,
        "G" | "g" => 30,
        "T" | "t" => 40,
        _ => return Err(format!("invalid size suffix in '{s}': use K, M, G or T")),
    };
    value
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("size '{s}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_like_qemu() {
        assert_eq!(parse_size("256"), Ok(256 << 20));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert!(parse_size("").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn parses_serial_backends() {
        assert_eq!("stdio".parse(), Ok(SerialConfig::Stdio));
        assert_eq!("none".parse(), Ok(SerialConfig::None));
        assert_eq!(
            "file:/tmp/x".parse(),
            Ok(SerialConfig::File("/tmp/x".into()))
        );
        assert!("file:".parse::<SerialConfig>().is_err());
        assert!("tcp:1".parse::<SerialConfig>().is_err());
    }

    #[test]
    fn parses_irqchip_modes() {
        assert_eq!("kernel".parse(), Ok(IrqchipMode::Kernel));
        assert_eq!("userspace".parse(), Ok(IrqchipMode::Userspace));
        assert!("user".parse::<IrqchipMode>().is_err());
    }
}
