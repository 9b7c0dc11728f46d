//! All-stop debugging of the `virt` machine's harts, the hart side: with `--gdb` each hart
//! thread runs only when the debugger resumes it (continue or one step) and parks, with its
//! `SystemHart` unlocked, whenever the machine is stopped for the debugger. The debugger
//! (`gdb_stub.rs`) reads and writes a parked hart through its mutex.
//!
//! Stopping uses the harts' own stop switch (`HartShared::request_stop`): it is the one
//! thing that makes `run` return, `wfi` wake and an HSM-stopped hart's wait end. Timer
//! threads also end on it, so each runs in a loop here that starts it again on resume.
//! The machine really stops only after [`DebugHarts::shutdown`], which every waiting
//! thread checks first.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use riscv::debug::Breakpoints;
use riscv::system::{HartEvent, HartShared, SystemHart, Timebase};
use vmm_sys_util::eventfd::EventFd;

use super::machine::HartCtx;
use super::sbi::{self, After, HartSlot};
use crate::ExitReason;

/// What the debugger lets a hart do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Go {
    Continue,
    Step,
}

/// Why the machine stopped for the debugger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StopWhy {
    Breakpoint,
    Step,
    /// The debugger asked (Ctrl-C).
    Interrupt,
}

struct State {
    /// Bumped by each resume; a parked hart acts once per generation.
    generation: u64,
    /// This generation's action of each hart (None: it stays parked).
    actions: Vec<Option<Go>>,
    parked: Vec<bool>,
    /// The first reason to stop since the last resume, and the hart it concerns.
    event: Option<(usize, StopWhy)>,
    /// The machine is ending: nobody waits any more.
    quit: bool,
}

pub(crate) struct DebugHarts {
    state: Mutex<State>,
    resumed: Condvar,
    /// Written when a hart parks; the debugger's thread polls it.
    pub(crate) parked_evt: EventFd,
    harts: Vec<Arc<Mutex<SystemHart>>>,
    slots: Vec<Arc<HartSlot>>,
    pub(crate) breakpoints: Arc<Breakpoints>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl DebugHarts {
    /// Takes the harts over; they start stopped, as if the debugger had stopped them
    /// before their first instruction.
    pub(crate) fn new(
        harts: Vec<SystemHart>,
        slots: Vec<Arc<HartSlot>>,
    ) -> std::io::Result<DebugHarts> {
        let breakpoints = Arc::new(Breakpoints::default());
        let n = harts.len();
        let harts = harts
            .into_iter()
            .map(|mut h| {
                h.set_breakpoints(Some(breakpoints.clone()));
                h.shared().stop.store(true, Ordering::SeqCst);
                Arc::new(Mutex::new(h))
            })
            .collect();
        Ok(DebugHarts {
            state: Mutex::new(State {
                generation: 0,
                actions: vec![None; n],
                parked: vec![false; n],
                event: None,
                quit: false,
            }),
            resumed: Condvar::new(),
            parked_evt: EventFd::new(libc::EFD_NONBLOCK)?,
            harts,
            slots,
            breakpoints,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.harts.len()
    }

    pub(crate) fn hart(&self, id: usize) -> Option<MutexGuard<'_, SystemHart>> {
        self.harts.get(id).map(|h| lock(h))
    }

    fn shared(&self, id: usize) -> &HartShared {
        &self.slots[id].shared
    }

    /// Makes every hart stop soon: leave translated code, wake from `wfi` or an HSM wait.
    fn stop_all(&self) {
        for s in &self.slots {
            s.shared.request_stop();
            s.wake();
        }
    }

    /// A hart's thread: parks until the debugger gives this hart something to do (None
    /// when the machine ends). `seen` is the generation the hart last acted on.
    fn park(&self, id: usize, seen: &mut u64) -> Option<Go> {
        let mut g = lock(&self.state);
        g.parked[id] = true;
        let _ = self.parked_evt.write(1);
        loop {
            if g.quit {
                return None;
            }
            if g.generation != *seen {
                *seen = g.generation;
                if let Some(go) = g.actions[id] {
                    return Some(go);
                }
            }
            g = self.resumed.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// A hart stopped for a reason the debugger must see: the others stop too.
    fn report(&self, id: usize, why: StopWhy) {
        let mut g = lock(&self.state);
        g.event.get_or_insert((id, why));
        drop(g);
        self.stop_all();
    }

    /// The debugger's Ctrl-C: stops every hart, reported on the first resumed one.
    pub(crate) fn interrupt(&self) {
        let mut g = lock(&self.state);
        if g.event.is_none() {
            let id = g.actions.iter().position(Option::is_some).unwrap_or(0);
            g.event = Some((id, StopWhy::Interrupt));
        }
        drop(g);
        self.stop_all();
    }

    /// The stop to report, once every hart is parked.
    pub(crate) fn stopped(&self) -> Option<(usize, StopWhy)> {
        let mut g = lock(&self.state);
        if !g.parked.iter().all(|&p| p) {
            return None;
        }
        // Every hart parked without a reason cannot happen (a hart parks after a report,
        // a stop request or the machine's end); report an interrupt rather than hang.
        Some(g.event.take().unwrap_or((0, StopWhy::Interrupt)))
    }

    /// Lets the harts with an action go (all harts are parked).
    pub(crate) fn resume(&self, actions: &[Option<Go>]) {
        let mut g = lock(&self.state);
        if g.quit {
            return;
        }
        g.event = None;
        for (id, a) in actions.iter().enumerate().take(g.actions.len()) {
            g.actions[id] = *a;
            if a.is_some() {
                g.parked[id] = false;
            }
            // A stepping hart keeps its stop switch on: one `wfi` must not wait for an
            // interrupt, and its timer stays quiet.
            if *a == Some(Go::Continue) {
                self.shared(id).stop.store(false, Ordering::SeqCst);
            }
        }
        g.generation += 1;
        self.resumed.notify_all();
    }

    /// The debugger left (its breakpoints removed): every hart runs on.
    pub(crate) fn detach(&self) {
        self.resume(&vec![Some(Go::Continue); self.len()]);
    }

    /// The machine is ending: every waiting thread returns.
    pub(crate) fn shutdown(&self) {
        lock(&self.state).quit = true;
        self.resumed.notify_all();
    }

    /// A timer thread: waits while its hart is stopped; false when the machine ends.
    fn wait_for_timer(&self, shared: &HartShared) -> bool {
        let mut g = lock(&self.state);
        loop {
            if g.quit {
                return false;
            }
            if !shared.stop.load(Ordering::SeqCst) {
                return true;
            }
            g = self.resumed.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// A hart's timer thread under the debugger: the usual one, started again after each stop.
pub(crate) fn timer_thread(shared: Arc<HartShared>, timebase: Timebase, dbg: Arc<DebugHarts>) {
    while dbg.wait_for_timer(&shared) {
        riscv::system::engine::timer_thread(shared.clone(), timebase);
    }
}

/// A hart's thread under the debugger: what `machine::hart_thread` does, between parks.
pub(crate) fn hart_thread(id: usize, dbg: Arc<DebugHarts>, mut ctx: HartCtx) {
    let mut seen = 0;
    while let Some(go) = dbg.park(id, &mut seen) {
        let done = match go {
            Go::Step => step(id, &dbg, &mut ctx),
            Go::Continue => run(id, &dbg, &mut ctx),
        };
        if !done {
            return;
        }
    }
}

/// One instruction of a resumed hart; false when the machine ends.
fn step(id: usize, dbg: &DebugHarts, ctx: &mut HartCtx) -> bool {
    if !ctx.running {
        // Nothing to execute before an HSM start.
        dbg.report(id, StopWhy::Step);
        return true;
    }
    let mut h = lock(&dbg.harts[id]);
    let pc = h.hart().cpu.pc;
    let mut event = h.step();
    if event == HartEvent::Breakpoint && dbg.breakpoints.contains(pc) {
        // GDB steps off its breakpoints after removing them; a client that leaves one
        // inserted still gets its step.
        dbg.breakpoints.remove(pc);
        event = h.step();
        dbg.breakpoints.insert(pc);
    }
    let why = match event {
        HartEvent::Sbi => {
            if ctx.sbi.call(h.hart()) == After::StopHart {
                ctx.running = false;
            }
            StopWhy::Step
        }
        HartEvent::Breakpoint => StopWhy::Breakpoint,
        HartEvent::Stepped | HartEvent::Stopped => StopWhy::Step,
        HartEvent::Stuck(why) => {
            ctx.control.stop(ExitReason::HartStuck(why));
            return false;
        }
    };
    drop(h);
    dbg.report(id, why);
    true
}

/// Runs a resumed hart until the debugger stops the machine; false when the machine ends.
fn run(id: usize, dbg: &DebugHarts, ctx: &mut HartCtx) -> bool {
    loop {
        if !ctx.running {
            match ctx.slot.wait_for_start() {
                Some((pc, opaque)) => {
                    sbi::enter_supervisor(lock(&dbg.harts[id]).hart(), pc, id as u64, opaque)
                }
                // Stopped (by the debugger or for good: `park` tells).
                None => return true,
            }
            ctx.running = true;
        }
        let mut h = lock(&dbg.harts[id]);
        match h.run() {
            HartEvent::Sbi => {
                if ctx.sbi.call(h.hart()) == After::StopHart {
                    ctx.running = false;
                }
            }
            HartEvent::Stopped => return true,
            HartEvent::Breakpoint => {
                drop(h);
                dbg.report(id, StopWhy::Breakpoint);
                return true;
            }
            HartEvent::Stepped => {}
            HartEvent::Stuck(why) => {
                ctx.control.stop(ExitReason::HartStuck(why));
                return false;
            }
        }
    }
}
