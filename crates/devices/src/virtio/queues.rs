//! The queues of an active device, as its worker serves them.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_core::GuestMemory;
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::eventfd::EventFd;

use super::chain::{Chain, ChainReader, ChainWriter};
use super::{ActivateError, Activation, GuestWrites, Interrupt};

struct Active {
    queue: Queue,
    notify: Arc<EventFd>,
    /// The driver broke this queue's rules: the device no longer touches it.
    broken: bool,
    /// Requests popped since the queue was last seen empty (see [`QueueSet::pop`]).
    streak: u16,
    /// The device gave the queue up for this round; it is taken up again once the worker
    /// is woken by its notify eventfd ([`QueueSet::drain_notify`]).
    yielded: bool,
}

/// Everything a worker needs to pop requests and complete them.
pub struct QueueSet {
    pub memory: GuestMemory,
    pub interrupt: Arc<Interrupt>,
    pub writes: Arc<dyn GuestWrites>,
    pub features: u64,
    queues: Vec<Option<Active>>,
}

impl QueueSet {
    pub fn new(a: Activation) -> QueueSet {
        let queues = a
            .queues
            .into_iter()
            .zip(a.notify)
            .map(|(q, notify)| {
                q.map(|queue| Active {
                    queue,
                    notify,
                    broken: false,
                    streak: 0,
                    yielded: false,
                })
            })
            .collect();
        QueueSet {
            memory: a.memory,
            interrupt: a.interrupt,
            writes: a.writes,
            features: a.features,
            queues,
        }
    }

    /// Fails activation unless the driver enabled queues `0..n`.
    pub fn require(&self, n: usize) -> Result<(), ActivateError> {
        match (0..n).find(|&i| !matches!(self.queues.get(i), Some(Some(_)))) {
            Some(i) => Err(ActivateError::MissingQueue(i)),
            None => Ok(()),
        }
    }

    /// The notify eventfd of queue `i`, registered with `token`.
    pub fn source(&self, i: usize, token: u64) -> Option<(RawFd, u64, EventSet)> {
        let q = self.queues.get(i)?.as_ref()?;
        (!q.broken).then(|| (q.notify.as_raw_fd(), token, EventSet::IN))
    }

    /// Clears queue `i`'s notify eventfd: the worker was woken for the queue.
    pub fn drain_notify(&mut self, i: usize) {
        if let Some(Some(q)) = self.queues.get_mut(i) {
            q.yielded = false;
            super::worker::drain(&q.notify);
        }
    }

    /// Stops the driver from notifying queue `i` while the device drains it anyway.
    pub fn disable_notification(&mut self, i: usize) {
        let mem = &self.memory;
        if let Some(Some(q)) = self.queues.get_mut(i) {
            let _ = q.queue.disable_notification(mem);
        }
    }

    /// Asks for notifications again; true when buffers arrived meanwhile (serve them
    /// now). False after [`QueueSet::pop`] gave the queue up for this round: the worker
    /// is woken for it anyway.
    pub fn enable_notification(&mut self, i: usize) -> bool {
        let mem = &self.memory;
        match self.queues.get_mut(i) {
            Some(Some(q)) if !q.broken => {
                let more = q.queue.enable_notification(mem).unwrap_or(false);
                more && !q.yielded
            }
            _ => false,
        }
    }

    /// The next request on queue `i`, validated; a malformed one breaks the queue.
    ///
    /// When the queue is empty this re-arms the driver's notifications (with EVENT_IDX,
    /// publishes how far the device has read) and looks once more, so every caller that
    /// pops until None is woken by the next request, however the driver batches.
    ///
    /// After a queue's worth of requests in a row the device gives the queue up for the
    /// round: this signals the queue's notify eventfd and returns None until the worker,
    /// back in epoll (where a stop request waits), is woken by it and calls
    /// [`QueueSet::drain_notify`]. However a device loops, its handler call ends. Without
    /// it a driver whose used ring overlaps its available ring, so that each completion
    /// offers one more request, kept the worker in one handler call forever, and a reset
    /// or pause, which waits for the worker, hung with it.
    pub fn pop(&mut self, i: usize) -> Option<Chain> {
        if let Some(Some(q)) = self.queues.get_mut(i) {
            if q.yielded {
                return None;
            }
            if q.streak >= q.queue.size() {
                q.streak = 0;
                q.yielded = true;
                let _ = q.notify.write(1);
                return None;
            }
        }
        loop {
            if let Some(chain) = self.pop_once(i) {
                if let Some(Some(q)) = self.queues.get_mut(i) {
                    q.streak += 1;
                }
                return Some(chain);
            }
            if !self.enable_notification(i) {
                if let Some(Some(q)) = self.queues.get_mut(i) {
                    q.streak = 0;
                }
                return None;
            }
        }
    }

    fn pop_once(&mut self, i: usize) -> Option<Chain> {
        let mem = &self.memory;
        let q = self.queues.get_mut(i)?.as_mut()?;
        if q.broken {
            return None;
        }
        let next = match q.queue.iter(mem) {
            Ok(mut it) => it.next().map(Chain::parse),
            Err(e) => {
                log::warn!("virtio: queue {i}: {e}");
                q.broken = true;
                self.interrupt.signal_needs_reset();
                return None;
            }
        };
        match next {
            None => None,
            Some(Ok(chain)) => Some(chain),
            Some(Err(e)) => {
                log::warn!("virtio: queue {i}: {e}; the device stops using it until reset");
                q.broken = true;
                self.interrupt.signal_needs_reset();
                None
            }
        }
    }

    /// Puts back the last popped request, to be served later (no room to serve it now).
    pub fn undo_pop(&mut self, i: usize) {
        if let Some(Some(q)) = self.queues.get_mut(i) {
            q.queue.go_to_previous_position();
        }
    }

    /// Whether queue `i` has requests waiting.
    pub fn has_pending(&mut self, i: usize) -> bool {
        let mem = &self.memory;
        match self.queues.get_mut(i) {
            Some(Some(q)) if !q.broken => q
                .queue
                .avail_idx(mem, std::sync::atomic::Ordering::Acquire)
                .is_ok_and(|idx| idx.0 != q.queue.next_avail()),
            _ => false,
        }
    }

    /// Returns a served request to the driver with `len` bytes written into it.
    pub fn complete(&mut self, i: usize, head: u16, len: u32) {
        let mem = &self.memory;
        let Some(Some(q)) = self.queues.get_mut(i) else {
            return;
        };
        if let Err(e) = q.queue.add_used(mem, head, len) {
            log::warn!("virtio: queue {i}: cannot put request {head} on the used ring: {e}");
            q.broken = true;
            self.interrupt.signal_needs_reset();
        }
    }

    /// Raises the used-ring interrupt if the driver wants one for queue `i`.
    pub fn notify_driver(&mut self, i: usize) {
        let mem = &self.memory;
        if let Some(Some(q)) = self.queues.get_mut(i) {
            if q.queue.needs_notification(mem).unwrap_or(true) {
                self.interrupt.signal_used();
            }
        }
    }

    pub fn reader<'a>(&'a self, chain: &'a Chain) -> ChainReader<'a> {
        ChainReader::new(&self.memory, chain)
    }

    pub fn writer<'a>(&'a self, chain: &'a Chain) -> ChainWriter<'a> {
        ChainWriter::new(&self.memory, &self.writes, chain)
    }

    /// The queues' state (positions, addresses), for a snapshot of a paused device.
    pub fn states(&self) -> Vec<Option<virtio_queue::QueueState>> {
        self.queues
            .iter()
            .map(|q| q.as_ref().map(|q| q.queue.state()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_core::irq::NoIrq;
    use vm_memory::{Bytes, GuestAddress};

    const DESC: u64 = 0x1000;
    const RING: u64 = 0x2000;
    const BUF: u64 = 0x3000;

    /// Found by the `virtio_blk` fuzz target: the used ring placed on the available ring,
    /// with the used index ahead of the available one. Each completion then writes an
    /// available index one past the request just popped, so a device that pops until
    /// None never stopped.
    #[test]
    fn a_used_ring_on_the_available_ring_cannot_keep_the_worker_forever() {
        let mem = vm_core::memory::create(&[(0, 0x1_0000)]).unwrap();
        let size = 8u16;
        let mut q = Queue::new(size).unwrap();
        q.set_desc_table_address(Some(DESC as u32), Some(0));
        q.set_avail_ring_address(Some(RING as u32), Some(0));
        q.set_used_ring_address(Some(RING as u32), Some(0));
        q.set_next_used(3);
        q.set_ready(true);
        assert!(q.is_valid(&mem));
        // Every available entry is chain 0: one writable buffer.
        mem.write_obj(BUF, GuestAddress(DESC)).unwrap();
        mem.write_obj(64u32, GuestAddress(DESC + 8)).unwrap();
        mem.write_obj(2u16, GuestAddress(DESC + 12)).unwrap();
        mem.write_obj(1u16, GuestAddress(RING + 2)).unwrap();

        let notify = Arc::new(EventFd::new(libc::EFD_NONBLOCK).unwrap());
        let mut qs = QueueSet::new(Activation {
            memory: mem.clone(),
            queues: vec![Some(q)],
            notify: vec![notify.clone()],
            interrupt: Arc::new(Interrupt::new(Arc::new(NoIrq))),
            writes: Arc::new(super::super::IgnoreWrites),
            features: 0,
        });
        let mut served = 0;
        while let Some(chain) = qs.pop(0) {
            qs.complete(0, chain.head, 0);
            served += 1;
            assert!(served <= 1000, "the device never left the queue");
        }
        assert_eq!(served, usize::from(size));
        // Given up for this round, however the device asks...
        assert!(qs.pop(0).is_none());
        assert!(!qs.enable_notification(0));
        // ...and the worker is told to come back: the queue still offers requests.
        assert_eq!(notify.read().unwrap(), 1);
        qs.drain_notify(0);
        assert!(qs.pop(0).is_some());
    }
}
