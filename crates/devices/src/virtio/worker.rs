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
            let modify = match registered.iter().find(|r| r.0 == new.0) {
                Some(r) if r == new => continue,
                Some(_) => true,
                None => false,
            };
            let op = if modify {
                ControlOperation::Modify
            } else {
                ControlOperation::Add
            };
            let event = EpollEvent::new(new.2, new.1);
            let mut result = epoll.ctl(op, new.0, event);
            if modify
                && result
                    .as_ref()
                    .is_err_and(|e| e.raw_os_error() == Some(libc::ENOENT))
            {
                // The fd was closed (which leaves the epoll set) and its number reused
                // by a new one: register the new file.
                result = epoll.ctl(ControlOperation::Add, new.0, event);
            }
            if let Err(e) = result {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Watches one stream; on its first event closes it and watches a new one, which
    /// (lowest free number) usually gets the same fd, under a new token: what a device
    /// does when a connection ends and the next one begins.
    struct Reuse {
        watched: Option<UnixStream>,
        token: u64,
        peer_out: mpsc::Sender<UnixStream>,
        seen: mpsc::Sender<u64>,
    }

    impl Handler for Reuse {
        fn sources(&self) -> Vec<(RawFd, u64, EventSet)> {
            self.watched
                .iter()
                .map(|w| (w.as_raw_fd(), self.token, EventSet::IN))
                .collect()
        }
        fn ready(&mut self, token: u64, _events: EventSet) {
            let _ = self.seen.send(token);
            if token == 1 {
                self.watched = None;
                let (new, peer) = UnixStream::pair().unwrap();
                self.watched = Some(new);
                self.token = 2;
                let _ = self.peer_out.send(peer);
            }
        }
    }

    #[test]
    fn a_reused_fd_number_is_watched_under_its_new_token() {
        let (watched, mut peer) = UnixStream::pair().unwrap();
        let (peer_tx, peer_rx) = mpsc::channel();
        let (seen_tx, seen_rx) = mpsc::channel();
        let handler = Reuse {
            watched: Some(watched),
            token: 1,
            peer_out: peer_tx,
            seen: seen_tx,
        };
        let worker = Worker::spawn("reuse-test".into(), handler).unwrap();
        peer.write_all(b"x").unwrap();
        let wait = Duration::from_secs(10);
        assert_eq!(seen_rx.recv_timeout(wait), Ok(1));
        let mut new_peer = peer_rx.recv_timeout(wait).unwrap();
        new_peer.write_all(b"y").unwrap();
        assert_eq!(seen_rx.recv_timeout(wait), Ok(2));
        let handler = worker.stop().expect("the worker stops");
        assert_eq!(handler.token, 2);
    }
}
