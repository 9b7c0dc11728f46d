//! The disk image layer (`devices::disk`) against QEMU's own tools: images are made with
//! `qemu-img`, changed through our API, then checked with `qemu-img check` and read back
//! with `qemu-img convert`. Tests skip with a printed reason where `qemu-img` is missing.

mod common;
mod corrupt;
mod qcow2;
mod raw;
