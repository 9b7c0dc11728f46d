//! The I/O devices a user asks for, parsed from Cloud Hypervisor-style `key=value` lists:
//! `--disk path=FILE[,format=raw|qcow2][,readonly=on]`, `--net tap=NAME[,mac=MAC]`,
//! `--rng`, `--console virtio|serial`, `--vsock cid=N,socket=PATH`. The same on every
//! machine.

use std::path::PathBuf;

use devices::disk::Format;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskConfig {
    pub path: PathBuf,
    /// None: probed from the file's first bytes.
    pub format: Option<Format>,
    pub readonly: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    pub tap: String,
    pub mac: Option<[u8; 6]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VsockConfig {
    pub cid: u64,
    pub socket: PathBuf,
}

/// Which device the guest console (stdio) is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConsoleKind {
    /// The 16550 UART (`ttyS0`).
    #[default]
    Serial,
    /// A virtio-console (`hvc0`).
    Virtio,
}

impl std::str::FromStr for ConsoleKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "serial" => Ok(ConsoleKind::Serial),
            "virtio" => Ok(ConsoleKind::Virtio),
            _ => Err(format!("invalid console '{s}': expected serial or virtio")),
        }
    }
}

/// Every I/O device of a machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IoConfig {
    pub disks: Vec<DiskConfig>,
    pub nets: Vec<NetConfig>,
    pub rng: bool,
    pub console: ConsoleKind,
    pub vsock: Option<VsockConfig>,
}

impl IoConfig {
    /// How many virtio-mmio transports these devices take.
    pub fn virtio_count(&self) -> usize {
        self.disks.len()
            + self.nets.len()
            + usize::from(self.rng)
            + usize::from(self.console == ConsoleKind::Virtio)
            + usize::from(self.vsock.is_some())
    }
}

/// Splits `key=value,key=value`; every key must be one of `known` and appear once.
fn pairs<'a>(what: &str, s: &'a str, known: &[&str]) -> Result<Vec<(&'a str, &'a str)>, String> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for item in s.split(',') {
        let Some((k, v)) = item.split_once('=') else {
            return Err(format!(
                "invalid {what} option '{item}': expected key=value"
            ));
        };
        if !known.contains(&k) {
            return Err(format!(
                "unknown {what} option '{k}': expected one of {}",
                known.join(", ")
            ));
        }
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(format!("{what} option '{k}' given twice"));
        }
        out.push((k, v));
    }
    Ok(out)
}

fn on_off(what: &str, v: &str) -> Result<bool, String> {
    match v {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err(format!("invalid {what} value '{v}': expected on or off")),
    }
}

impl std::str::FromStr for DiskConfig {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut disk = DiskConfig {
            path: PathBuf::new(),
            format: None,
            readonly: false,
        };
        for (k, v) in pairs("--disk", s, &["path", "format", "readonly"])? {
            match k {
                "path" => disk.path = v.into(),
                "format" => disk.format = Some(v.parse().map_err(|e| format!("{e}"))?),
                _ => disk.readonly = on_off("readonly", v)?,
            }
        }
        if disk.path.as_os_str().is_empty() {
            return Err("--disk needs path=FILE".into());
        }
        Ok(disk)
    }
}

/// Parses `52:54:00:12:34:56`.
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let bad =
        || format!("invalid MAC address '{s}': expected six hex bytes like 52:54:00:12:34:56");
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        let p = parts.next().ok_or_else(bad)?;
        if p.len() != 2 {
            return Err(bad());
        }
        *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    if mac[0] & 1 != 0 {
        return Err(format!("invalid MAC address '{s}': a multicast address"));
    }
    Ok(mac)
}

impl std::str::FromStr for NetConfig {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut net = NetConfig {
            tap: String::new(),
            mac: None,
        };
        for (k, v) in pairs("--net", s, &["tap", "mac"])? {
            match k {
                "tap" => net.tap = v.into(),
                _ => net.mac = Some(parse_mac(v)?),
            }
        }
        // IFNAMSIZ less the terminating NUL.
        if net.tap.is_empty() || net.tap.len() > 15 {
            return Err("--net needs tap=NAME (1 to 15 characters)".into());
        }
        Ok(net)
    }
}

impl std::str::FromStr for VsockConfig {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (mut cid, mut socket) = (None, None);
        for (k, v) in pairs("--vsock", s, &["cid", "socket"])? {
            match k {
                "cid" => {
                    cid = Some(
                        v.parse::<u64>()
                            .map_err(|_| format!("invalid vsock cid '{v}'"))?,
                    )
                }
                _ => socket = Some(PathBuf::from(v)),
            }
        }
        let (Some(cid), Some(socket)) = (cid, socket) else {
            return Err("--vsock needs cid=N,socket=PATH".into());
        };
        // 0-2 are the hypervisor, local and host addresses; u32::MAX is "any".
        if !(3..u64::from(u32::MAX)).contains(&cid) {
            return Err(format!(
                "invalid vsock cid {cid}: guests use 3 to 4294967294"
            ));
        }
        Ok(VsockConfig { cid, socket })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_disks() {
        let d: DiskConfig = "path=/tmp/a.img,format=qcow2,readonly=on".parse().unwrap();
        assert_eq!(d.path, PathBuf::from("/tmp/a.img"));
        assert_eq!(d.format, Some(Format::Qcow2));
        assert!(d.readonly);
        let d: DiskConfig = "path=x".parse().unwrap();
        assert_eq!((d.format, d.readonly), (None, false));
        assert!("format=raw".parse::<DiskConfig>().is_err());
        assert!("path=x,format=vmdk".parse::<DiskConfig>().is_err());
        assert!("path=x,readonly=maybe".parse::<DiskConfig>().is_err());
        assert!("path=x,path=y".parse::<DiskConfig>().is_err());
        assert!("/tmp/a.img".parse::<DiskConfig>().is_err());
        assert!("path=x,cache=none".parse::<DiskConfig>().is_err());
    }

    #[test]
    fn parses_nets_and_macs() {
        let n: NetConfig = "tap=tap0,mac=52:54:00:12:34:56".parse().unwrap();
        assert_eq!(n.tap, "tap0");
        assert_eq!(n.mac, Some([0x52, 0x54, 0, 0x12, 0x34, 0x56]));
        assert!("tap=".parse::<NetConfig>().is_err());
        assert!("tap=averyveryverylongname".parse::<NetConfig>().is_err());
        assert!(parse_mac("52:54:00:12:34").is_err());
        assert!(parse_mac("52:54:00:12:34:56:78").is_err());
        assert!(parse_mac("01:00:00:00:00:00").is_err());
        assert!(parse_mac("zz:54:00:12:34:56").is_err());
    }

    #[test]
    fn parses_vsock() {
        let v: VsockConfig = "cid=3,socket=/tmp/v.sock".parse().unwrap();
        assert_eq!(v.cid, 3);
        assert!("cid=2,socket=/x".parse::<VsockConfig>().is_err());
        assert!("cid=3".parse::<VsockConfig>().is_err());
        assert!("cid=x,socket=/x".parse::<VsockConfig>().is_err());
    }
}
