//! The thread a device serves its queues on.
//!
//! A worker waits (epoll) on its queues' notify eventfds, any host file descriptors the
//! device needs (a tap, a socket) and a stop eventfd. Stopping it hands back the state it
//! owned, so a device can be reset, or paused and read out, without losing queue positions.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::thread::JoinHandle;

use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;

/// What a device does when one of its event sources is ready.
pub trait Handler: Send + 'static {
    /// `token` is what the source was registered with; `events` what epoll reported.
    fn ready(&mut self, token: u64, events: EventSet);
    /// Event sources to wait on, as (fd, token, events). Asked once before waiting and
    /// again after each round, so a handler can stop reading a source it cannot serve now
    /// (back-pressure) and take it up again later.
    fn sources(&self) -> Vec<(RawFd, u64, EventSet)>;
}

/// A running worker thread.
pub struct Worker<H> {
    stop: Arc<EventFd>,
    thread: Option<JoinHandle<H>>,
}

const STOP_TOKEN: u64 = u64::MAX;

impl<H: Handler> Worker<H> {
    pub fn spawn(name: String, handler: H) -> std::io::Result<Worker<H>> {
        let stop = Arc::new(EventFd::new(libc::EFD_NONBLOCK)?);
        let epoll = Epoll::new()?;
        epoll.ctl(
            ControlOperation::Add,
            stop.as_raw_fd(),
            EpollEvent::new(EventSet::IN, STOP_TOKEN),
        )?;
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || run(epoll, handler))?;
        Ok(Worker {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and returns its handler (None if the thread panicked).
    pub fn stop(mut self) -> Option<H> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Option<H> {
        let _ = self.stop.write(1);
        self.thread.take().and_then(|t| t.join().ok())
    }
}

impl<H> Drop for Worker<H> {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = self.stop.write(1);
            let _ = t.join();
        }
    }
}

fn run<H: Handler>(epoll: Epoll, mut handler: H) -> H {
    let mut registered: Vec<(RawFd, u64, EventSet)> = Vec::new();
    let mut events = vec![EpollEvent::default(); 16];
    loop {
        // Bring the epoll set in line with what the handler wants to hear about now.
        let wanted = handler.sources();
        for old in &registered {
            if !wanted.iter().any(|w| w.0 == old.0) {
                let _ = epoll.ctl(ControlOperation::Delete, old.0, EpollEvent::default());
            }
        }
        for new in &wanted {
            let op = match registered.iter().find(|r| r.0 == new.0) {
                Some(r) if r == new => continue,
                Some(_) => ControlOperation::Modify,
                None => ControlOperation::Add,
            };
            if let Err(e) = epoll.ctl(op, new.0, EpollEvent::new(new.2, new.1)) {
                log::warn!("virtio worker: cannot wait on fd {}: {e}", new.0);
            }
        }
        registered = wanted;
        let n = match epoll.wait(-1, &mut events) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::error!("virtio worker: epoll failed: {e}");
                return handler;
            }
        };
        for ev in &events[..n] {
            if ev.data() == STOP_TOKEN {
                return handler;
            }
        }
        for ev in &events[..n] {
            handler.ready(ev.data(), ev.event_set());
        }
    }
}

/// Reads an eventfd to clear it (its count does not matter: the queue is drained anyway).
pub fn drain(evt: &EventFd) {
    let _ = evt.read();
}
