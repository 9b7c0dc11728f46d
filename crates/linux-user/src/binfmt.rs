//! The kernel's binfmt_misc: registering Tandem as the handler of RISC-V 64-bit ELF programs
//! (so `./prog` and `chroot DIR /prog` just work), and noticing that binfmt_misc started us.
//!
//! The entry uses the flags Debian's qemu-user-static packages use, plus `C`:
//! - `P` keeps the program's argv[0]: Tandem gets `[tandem, path, argv[0], args...]`;
//! - `O` the kernel opens the program and passes the fd in the auxiliary vector (AT_EXECFD),
//!   so an executable but unreadable program runs too, and it is how Tandem knows it was
//!   started by binfmt_misc (no wrapper binary needed);
//! - `C` credentials come from the program (set-user-ID programs; implies `O`);
//! - `F` the kernel opens Tandem once, at registration, so the entry works in a chroot or a
//!   mount namespace where Tandem's path does not exist: hence the static build.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Where binfmt_misc is mounted.
pub const MOUNT: &str = "/proc/sys/fs/binfmt_misc";
/// The entry's name unless told otherwise.
pub const DEFAULT_NAME: &str = "tandem-riscv64";
/// See the module comment.
pub const FLAGS: &str = "POCF";

/// The ELF header fields that identify a RISC-V 64-bit program: the ident (class ELF64,
/// little-endian, version 1), then e_type and e_machine. OS ABI, ABI version and padding are
/// ignored, as the kernel's own ELF loader ignores them; e_type's mask lets both ET_EXEC (2)
/// and ET_DYN (3) through.
const MAGIC: [u8; 20] = [
    0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0xf3, 0,
];
const MASK: [u8; 20] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff,
];

#[derive(Debug, Error)]
pub enum BinfmtError {
    #[error("binfmt_misc is not mounted on {MOUNT}; mount it with: mount -t binfmt_misc binfmt_misc {MOUNT}")]
    NotMounted,
    #[error("changing binfmt_misc handlers needs root")]
    NotRoot,
    #[error("bad handler name {0:?}: use 1 to 64 letters, digits, '.', '_' or '-', not starting with '.'")]
    BadName(String),
    #[error("cannot register {0}: the kernel needs an absolute path without ':' or newlines")]
    BadInterpreter(PathBuf),
    #[error("a binfmt_misc handler named {name} already exists (interpreter {interpreter}); remove it first with --binfmt unregister --binfmt-name {name}")]
    NameTaken { name: String, interpreter: String },
    #[error("binfmt_misc handler {name} (interpreter {interpreter}) already runs RISC-V 64-bit programs; remove it first: echo -1 > {MOUNT}/{name}")]
    Conflict { name: String, interpreter: String },
    #[error("{path} is dynamically linked (it needs {interp}), so the registered handler cannot start inside a chroot that lacks the host's libraries; register a static build (scripts/build-static-riscv64.sh), or pass --binfmt-allow-dynamic to register this one for use outside chroots")]
    Dynamic { path: PathBuf, interp: String },
    #[error("no binfmt_misc handler named {0} is registered")]
    NotRegistered(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BinfmtError + '_ {
    move |source| BinfmtError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The program binfmt_misc opened for us, if binfmt_misc started this process (AT_EXECFD in
/// the auxiliary vector: only the `O` and `C` flags put it there). Call once, early: the
/// returned file owns the descriptor.
pub fn exec_file() -> Option<File> {
    use std::os::fd::FromRawFd;
    // The fd may legitimately be 0 (the caller closed stdin), so absence is told by errno,
    // which getauxval sets to ENOENT, not by the value.
    // SAFETY: __errno_location returns this thread's errno, valid for the thread's life.
    unsafe { *libc::__errno_location() = 0 };
    // SAFETY: getauxval has no preconditions.
    let fd = unsafe { libc::getauxval(libc::AT_EXECFD) };
    if std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOENT) {
        return None;
    }
    let fd = i32::try_from(fd).ok()?;
    // Nothing else knows this descriptor: check it is one before taking it over.
    // SAFETY: F_GETFD only reads the descriptor's flags.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: the kernel installed this descriptor for this process at exec and nothing in
    // the process has used it; the File becomes its only owner.
    Some(unsafe { File::from_raw_fd(fd) })
}

/// Whether this process was started set-user-ID or set-group-ID (AT_SECURE), as binfmt_misc's
/// `C` flag does for such a program: Tandem must then not let the caller's environment steer
/// it (a sysroot would let them pick the dynamic loader that runs with those privileges).
pub fn secure() -> bool {
    // SAFETY: getauxval has no preconditions; an absent entry reads as 0.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

/// One binfmt_misc entry as its file in the mount shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub enabled: bool,
    pub interpreter: String,
    pub flags: String,
    pub offset: usize,
    /// Empty for an extension entry.
    pub magic: Vec<u8>,
    /// Same length as `magic` (all ones when the entry has no mask).
    pub mask: Vec<u8>,
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Entry {
    /// Parses the text of `MOUNT/name`.
    pub fn parse(name: &str, text: &str) -> Entry {
        let mut e = Entry {
            name: name.to_string(),
            ..Entry::default()
        };
        for line in text.lines() {
            let (key, val) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "enabled" => e.enabled = true,
                "interpreter" => e.interpreter = val.to_string(),
                "flags:" => e.flags = val.trim().to_string(),
                "offset" => e.offset = val.trim().parse().unwrap_or(0),
                "magic" => e.magic = unhex(val.trim()).unwrap_or_default(),
                "mask" => e.mask = unhex(val.trim()).unwrap_or_default(),
                _ => {}
            }
        }
        if e.mask.len() != e.magic.len() {
            e.mask = vec![0xff; e.magic.len()];
        }
        e
    }

    /// Whether the kernel would hand a file starting with `head` to this entry (the test of
    /// fs/binfmt_misc.c: every masked byte equal).
    pub fn matches(&self, head: &[u8]) -> bool {
        if self.magic.is_empty() {
            return false;
        }
        let Some(window) = head.get(self.offset..self.offset + self.magic.len()) else {
            return false;
        };
        window
            .iter()
            .zip(&self.magic)
            .zip(&self.mask)
            .all(|((h, m), k)| (h ^ m) & k == 0)
    }

    /// Whether it would take RISC-V 64-bit programs: tried on the headers real ones have
    /// (OS ABI System V or GNU, static or position-independent).
    pub fn claims_riscv64(&self) -> bool {
        [0u8, 3].iter().any(|&osabi| {
            [2u8, 3].iter().any(|&e_type| {
                let mut h = [0u8; 64];
                h[..7].copy_from_slice(&MAGIC[..7]);
                h[7] = osabi;
                h[16] = e_type;
                h[18] = 0xf3;
                self.matches(&h)
            })
        })
    }
}

fn check_mounted(dir: &Path) -> Result<(), BinfmtError> {
    if dir.join("register").exists() {
        Ok(())
    } else {
        Err(BinfmtError::NotMounted)
    }
}

fn check_name(name: &str) -> Result<(), BinfmtError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c));
    if ok {
        Ok(())
    } else {
        Err(BinfmtError::BadName(name.to_string()))
    }
}

/// Changing handlers needs root (`register` and `unregister` check it themselves too).
pub fn check_root() -> Result<(), BinfmtError> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        Ok(())
    } else {
        Err(BinfmtError::NotRoot)
    }
}

/// Every entry registered in `dir`.
fn entries(dir: &Path) -> Result<Vec<Entry>, BinfmtError> {
    let mut v = Vec::new();
    for de in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let de = de.map_err(io_err(dir))?;
        let name = de.file_name().to_string_lossy().into_owned();
        if name == "register" || name == "status" {
            continue;
        }
        // An entry removed meanwhile is simply not there any more.
        if let Ok(text) = std::fs::read_to_string(de.path()) {
            v.push(Entry::parse(&name, &text));
        }
    }
    Ok(v)
}

/// The entry named `name`, if registered.
pub fn find(name: &str) -> Result<Option<Entry>, BinfmtError> {
    check_name(name)?;
    let dir = Path::new(MOUNT);
    check_mounted(dir)?;
    Ok(entries(dir)?.into_iter().find(|e| e.name == name))
}

/// The enabled entries other than `name` that would take RISC-V 64-bit programs.
pub fn rivals(name: &str) -> Result<Vec<Entry>, BinfmtError> {
    let dir = Path::new(MOUNT);
    check_mounted(dir)?;
    Ok(entries(dir)?
        .into_iter()
        .filter(|e| e.name != name && e.enabled && e.claims_riscv64())
        .collect())
}

/// The ELF interpreter (PT_INTERP) an x86-64 program names, None for a static one.
pub fn elf_interpreter(path: &Path) -> Result<Option<String>, BinfmtError> {
    let f = File::open(path).map_err(io_err(path))?;
    let bad = || BinfmtError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not an ELF64 program"),
    };
    let mut h = [0u8; 64];
    f.read_exact_at(&mut h, 0).map_err(|_| bad())?;
    if &h[..4] != b"\x7fELF" || h[4] != 2 || h[5] != 1 {
        return Err(bad());
    }
    let phoff = u64::from_le_bytes(h[32..40].try_into().map_err(|_| bad())?);
    let phentsize = u64::from(u16::from_le_bytes([h[54], h[55]]));
    let phnum = u64::from(u16::from_le_bytes([h[56], h[57]]));
    if phentsize < 56 {
        return Err(bad());
    }
    for i in 0..phnum {
        let mut p = [0u8; 56];
        let at = phoff.checked_add(i * phentsize).ok_or_else(bad)?;
        f.read_exact_at(&mut p, at).map_err(|_| bad())?;
        if u32::from_le_bytes([p[0], p[1], p[2], p[3]]) == 3 {
            let off = u64::from_le_bytes(p[8..16].try_into().map_err(|_| bad())?);
            let len = u64::from_le_bytes(p[32..40].try_into().map_err(|_| bad())?).min(4096);
            let mut name = vec![0u8; len as usize];
            f.read_exact_at(&mut name, off).map_err(|_| bad())?;
            let n = name.iter().position(|&c| c == 0).unwrap_or(name.len());
            return Ok(Some(String::from_utf8_lossy(&name[..n]).into_owned()));
        }
    }
    Ok(None)
}

fn hex_escape(b: &[u8]) -> String {
    b.iter().map(|c| format!("\\x{c:02x}")).collect()
}

/// The line written to `register` (see the kernel's Documentation/admin-guide/binfmt-misc.rst).
fn register_line(name: &str, interpreter: &str) -> String {
    format!(
        ":{name}:M:0:{}:{}:{interpreter}:{FLAGS}",
        hex_escape(&MAGIC),
        hex_escape(&MASK)
    )
}

/// What [`register`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Registered {
    New,
    /// The same entry was already there.
    Already,
}

/// Registers `interpreter` (normally this program) under `name`. Refuses when binfmt_misc is
/// not mounted, without root, when another enabled entry already takes RISC-V 64-bit
/// programs, or when `interpreter` is dynamically linked unless `allow_dynamic`.
pub fn register(
    name: &str,
    interpreter: &Path,
    allow_dynamic: bool,
) -> Result<Registered, BinfmtError> {
    check_name(name)?;
    let dir = Path::new(MOUNT);
    check_mounted(dir)?;
    check_root()?;
    let interp_str = interpreter
        .to_str()
        .filter(|s| s.starts_with('/') && !s.contains([':', '\n']) && s.len() < 1024)
        .ok_or_else(|| BinfmtError::BadInterpreter(interpreter.to_path_buf()))?;
    if !allow_dynamic {
        if let Some(interp) = elf_interpreter(interpreter)? {
            return Err(BinfmtError::Dynamic {
                path: interpreter.to_path_buf(),
                interp,
            });
        }
    }
    let all = entries(dir)?;
    if let Some(e) = all.iter().find(|e| e.name == name) {
        // The kernel may store the magic masked: compare masked bytes.
        let masked = |m: &[u8]| -> Vec<u8> { m.iter().zip(MASK).map(|(b, k)| b & k).collect() };
        let same = e.interpreter == interp_str
            && e.flags == FLAGS
            && e.offset == 0
            && e.mask == MASK
            && masked(&e.magic) == masked(&MAGIC);
        if same {
            return Ok(Registered::Already);
        }
        return Err(BinfmtError::NameTaken {
            name: name.to_string(),
            interpreter: e.interpreter.clone(),
        });
    }
    if let Some(e) = all.iter().find(|e| e.enabled && e.claims_riscv64()) {
        return Err(BinfmtError::Conflict {
            name: e.name.clone(),
            interpreter: e.interpreter.clone(),
        });
    }
    let reg = dir.join("register");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&reg)
        .map_err(|e| write_err(&reg, e))?;
    // One write: the kernel parses each write as a whole entry.
    f.write_all(register_line(name, interp_str).as_bytes())
        .map_err(|e| write_err(&reg, e))?;
    Ok(Registered::New)
}

fn write_err(path: &Path, e: std::io::Error) -> BinfmtError {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        BinfmtError::NotRoot
    } else {
        BinfmtError::Io {
            path: path.to_path_buf(),
            source: e,
        }
    }
}

/// Removes the entry `name`.
pub fn unregister(name: &str) -> Result<(), BinfmtError> {
    check_name(name)?;
    let dir = Path::new(MOUNT);
    check_mounted(dir)?;
    check_root()?;
    let path = dir.join(name);
    let mut f = match std::fs::OpenOptions::new().write(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BinfmtError::NotRegistered(name.to_string()))
        }
        Err(e) => return Err(write_err(&path, e)),
    };
    f.write_all(b"-1").map_err(|e| write_err(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const QEMU_LIKE: &str = "enabled\ninterpreter /usr/libexec/qemu-binfmt/riscv64-binfmt-P\n\
        flags: POF\noffset 0\nmagic 7f454c460201010000000000000000000200f300\n\
        mask ffffffffffffff00fffffffffffffffffeffffff\n";

    fn riscv_header(osabi: u8, e_type: u8) -> [u8; 64] {
        let mut h = [0u8; 64];
        h[..7].copy_from_slice(&MAGIC[..7]);
        h[7] = osabi;
        h[16] = e_type;
        h[18] = 0xf3;
        h
    }

    #[test]
    fn parses_an_entry_and_matches_like_the_kernel() {
        let e = Entry::parse("qemu-riscv64", QEMU_LIKE);
        assert!(e.enabled);
        assert_eq!(e.flags, "POF");
        assert_eq!(e.magic.len(), 20);
        assert!(e.claims_riscv64());
        let mut aarch64 = riscv_header(0, 2);
        aarch64[18] = 0xb7;
        assert!(!e.matches(&aarch64));
        assert!(!e.matches(&riscv_header(0, 4)), "ET_CORE is not a program");
        assert!(!e.matches(&[0x7f, b'E']), "a short file matches nothing");
    }

    #[test]
    fn our_magic_takes_exec_and_dyn_and_ignores_osabi() {
        let text = format!(
            "enabled\ninterpreter /x\nflags: {FLAGS}\noffset 0\nmagic {}\nmask {}\n",
            MAGIC.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            MASK.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let e = Entry::parse(DEFAULT_NAME, &text);
        for (osabi, e_type) in [(0, 2), (0, 3), (3, 2), (3, 3)] {
            assert!(e.matches(&riscv_header(osabi, e_type)));
        }
        let mut rv32 = riscv_header(0, 2);
        rv32[4] = 1;
        assert!(!e.matches(&rv32), "ELF32 is not ours");
        let mut be = riscv_header(0, 2);
        be[5] = 2;
        assert!(!e.matches(&be), "big-endian is not ours");
    }

    #[test]
    fn extension_entries_and_disabled_text_parse() {
        let e = Entry::parse(
            "py",
            "disabled\ninterpreter /usr/bin/python3\nflags: \nextension .pyc\n",
        );
        assert!(!e.enabled);
        assert!(!e.claims_riscv64());
    }

    #[test]
    fn register_line_has_the_kernel_format() {
        let l = register_line("t", "/usr/bin/tandem-riscv64");
        assert!(l.starts_with(":t:M:0:\\x7f\\x45\\x4c\\x46\\x02\\x01\\x01\\x00"));
        assert!(l.ends_with(":/usr/bin/tandem-riscv64:POCF"));
        assert_eq!(l.matches(':').count(), 7);
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("tandem-riscv64").is_ok());
        for bad in ["", ".", "..", "a/b", "a:b", "register\n"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn finds_the_interpreter_of_a_host_program() {
        // /bin/sh is dynamically linked on every Debian host.
        let i = elf_interpreter(Path::new("/bin/sh")).unwrap();
        assert!(i.is_some_and(|s| s.contains("ld-linux")));
        assert!(elf_interpreter(Path::new("/etc/passwd")).is_err());
    }
}
