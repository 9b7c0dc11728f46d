//! Translate functions for F and D.

use crate::ctx::{Args, Ctx};
use crate::decode::Row;

pub static FP_ROWS: &[Row] = &[];

pub fn fld(c: &mut Ctx, _a: &Args) -> bool {
    c.illegal()
}
pub fn fsd(c: &mut Ctx, _a: &Args) -> bool {
    c.illegal()
}
