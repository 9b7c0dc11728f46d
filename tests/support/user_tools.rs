//! Helpers the tandem-riscv64 test files share (included with `#[path]`, as the other
//! support files): the repository root, a tool check naming its Debian package, and an
//! exit status as text.
#![allow(dead_code)]

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Fails the test, naming the package to install, when `tool --version` cannot run.
pub fn need(tool: &str, package: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        ok,
        "{tool} not found: install the Debian package {package} (apt-get install {package})"
    );
}

/// "exit N" or "signal N".
pub fn status_str(o: &Output) -> String {
    match (o.status.code(), o.status.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => "unknown".into(),
    }
}
