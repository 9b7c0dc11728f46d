//! Native x86-64 backend (being written).

use crate::env::EnvPtr;
use crate::hostmem::GuestMem;
use crate::interp::BlockExit;
use crate::ir::Block;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

pub enum NativeExit {
    Block(BlockExit),
    Unchained { from: usize, slot: u8, pc: u64 },
}

pub struct Native;

impl Native {
    pub fn new(_size: usize, _mem: GuestMem, _exit: Arc<AtomicU32>) -> std::io::Result<Native> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "native backend not implemented yet",
        ))
    }
    pub fn compile(&mut self, _idx: usize, _b: &Block, _pc_off: u32) {}
    pub fn execute(&mut self, _idx: usize, _env: EnvPtr) -> NativeExit {
        NativeExit::Block(BlockExit::Code(u32::MAX))
    }
    pub fn chain(&mut self, _from: usize, _slot: u8, _to: usize) {}
    pub fn invalidate_tb(&mut self, _idx: usize) {}
}
