//! The initial process stack: argc, argv, envp and the auxiliary vector, laid out as the Linux
//! kernel does for RISC-V (sp 16-byte aligned, pointing at argc).

use crate::elf::Loaded;
use crate::errno::Errno;
use crate::space::{Backing, Space, PROT_READ, PROT_WRITE, STACK_SIZE, STACK_TOP};

const AT_NULL: u64 = 0;
const AT_PHDR: u64 = 3;
const AT_PHENT: u64 = 4;
const AT_PHNUM: u64 = 5;
const AT_PAGESZ: u64 = 6;
const AT_BASE: u64 = 7;
const AT_FLAGS: u64 = 8;
const AT_ENTRY: u64 = 9;
const AT_UID: u64 = 11;
const AT_EUID: u64 = 12;
const AT_GID: u64 = 13;
const AT_EGID: u64 = 14;
const AT_HWCAP: u64 = 16;
const AT_CLKTCK: u64 = 17;
const AT_SECURE: u64 = 23;
const AT_RANDOM: u64 = 25;
const AT_HWCAP2: u64 = 26;
const AT_EXECFN: u64 = 31;

/// RV64GC: one bit per single-letter extension, bit (letter - 'A').
pub const HWCAP: u64 = {
    let mut v = 0u64;
    let exts = b"IMAFDC";
    let mut i = 0;
    while i < exts.len() {
        v |= 1 << (exts[i] - b'A');
        i += 1;
    }
    v
};

/// Bytes going onto the stack, written top-down.
struct Builder<'a> {
    space: &'a Space,
    sp: u64,
}

impl Builder<'_> {
    fn push_bytes(&mut self, b: &[u8]) -> Result<u64, Errno> {
        self.sp -= b.len() as u64;
        self.space.write(self.sp, b)?;
        Ok(self.sp)
    }
    fn push_str(&mut self, s: &[u8]) -> Result<u64, Errno> {
        let mut v = s.to_vec();
        v.push(0);
        self.push_bytes(&v)
    }
}

fn random16() -> [u8; 16] {
    let mut b = [0u8; 16];
    // SAFETY: getrandom writes at most b.len() bytes into the buffer we own.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != 16 {
        // Not security-relevant for an emulator; any non-constant value keeps the stack
        // protector canary from being all zeroes.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0x5eed);
        b = t.to_le_bytes();
    }
    b
}

/// Maps the stack and writes the initial process state. Returns the initial sp.
pub fn setup(
    space: &Space,
    exe: &Loaded,
    interp: Option<&Loaded>,
    execfn: &str,
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
) -> Result<u64, Errno> {
    space.mmap(
        STACK_TOP - STACK_SIZE,
        STACK_SIZE,
        PROT_READ | PROT_WRITE,
        true,
        false,
        Backing::Anon { shared: false },
    )?;
    let mut b = Builder {
        space,
        sp: STACK_TOP - 16,
    };
    let execfn_at = b.push_str(execfn.as_bytes())?;
    let mut env_at = Vec::with_capacity(envp.len());
    for e in envp.iter().rev() {
        env_at.push(b.push_str(e)?);
    }
    env_at.reverse();
    let mut arg_at = Vec::with_capacity(argv.len());
    for a in argv.iter().rev() {
        arg_at.push(b.push_str(a)?);
    }
    arg_at.reverse();
    b.sp &= !15;
    let random_at = b.push_bytes(&random16())?;

    // SAFETY: these identity getters have no preconditions and cannot fail.
    let (uid, euid, gid, egid) = unsafe {
        (
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getegid(),
        )
    };
    // SAFETY: getauxval has no preconditions; an absent entry reads as 0.
    let secure = unsafe { libc::getauxval(libc::AT_SECURE) } != 0;
    // SAFETY: sysconf has no preconditions.
    let clktck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let auxv: Vec<(u64, u64)> = vec![
        (AT_PHDR, exe.phdr),
        (AT_PHENT, exe.phent),
        (AT_PHNUM, exe.phnum),
        (AT_PAGESZ, 4096),
        (AT_BASE, interp.map_or(0, |i| i.bias)),
        (AT_FLAGS, 0),
        (AT_ENTRY, exe.entry),
        (AT_UID, uid as u64),
        (AT_EUID, euid as u64),
        (AT_GID, gid as u64),
        (AT_EGID, egid as u64),
        (AT_HWCAP, HWCAP),
        (AT_HWCAP2, 0),
        (AT_CLKTCK, clktck),
        // Tandem started set-user-ID (binfmt_misc's `C` flag): the guest's libc must be as
        // careful as the host's (no LD_PRELOAD and the like).
        (AT_SECURE, u64::from(secure)),
        (AT_RANDOM, random_at),
        (AT_EXECFN, execfn_at),
        (AT_NULL, 0),
    ];
    let words = 1 + arg_at.len() + 1 + env_at.len() + 1 + 2 * auxv.len();
    let sp = (b.sp - 8 * words as u64) & !15;
    let mut table: Vec<u64> = Vec::with_capacity(words);
    table.push(arg_at.len() as u64);
    table.extend(&arg_at);
    table.push(0);
    table.extend(&env_at);
    table.push(0);
    for (k, v) in auxv {
        table.push(k);
        table.push(v);
    }
    let bytes: Vec<u8> = table.iter().flat_map(|w| w.to_le_bytes()).collect();
    space.write(sp, &bytes)?;
    Ok(sp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hwcap_is_rv64gc() {
        assert_eq!(HWCAP, 0x112d);
    }
}
