//! virtio-rng (virtio 1.x section 5.4): fills the driver's buffers from the host's
//! `getrandom(2)`.

use vmm_sys_util::epoll::EventSet;

use super::queues::QueueSet;
use super::worker::{Handler, Worker};
use super::{device_type, ActivateError, Activation, QueueState, VirtioDevice};

const QUEUE_SIZES: &[u16] = &[256];
/// Most bytes given per request, so one greedy driver buffer cannot stall the worker.
const MAX_PER_REQUEST: usize = 64 << 10;

#[derive(Default)]
pub struct Rng {
    worker: Option<Worker<RngWorker>>,
}

impl Rng {
    pub fn new() -> Self {
        Self::default()
    }
}

impl VirtioDevice for Rng {
    fn device_type(&self) -> u32 {
        device_type::RNG
    }
    fn queue_max_sizes(&self) -> &[u16] {
        QUEUE_SIZES
    }
    fn features(&self) -> u64 {
        0
    }
    fn read_config(&self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }
    fn activate(&mut self, activation: Activation) -> Result<(), ActivateError> {
        let queues = QueueSet::new(activation);
        queues.require(1)?;
        let worker = Worker::spawn("virtio-rng".into(), RngWorker { queues })
            .map_err(ActivateError::Thread)?;
        self.worker = Some(worker);
        Ok(())
    }
    fn pause(&mut self) -> Vec<Option<QueueState>> {
        let worker = self.worker.take().and_then(Worker::stop);
        worker.map(|w| w.queues.states()).unwrap_or_default()
    }
}

/// Fuzzing seam (feature `fuzzing`): serves the queue once on this thread, as the worker
/// does on a notify.
#[cfg(feature = "fuzzing")]
pub fn fuzz_serve(activation: Activation) -> Result<(), ActivateError> {
    let queues = QueueSet::new(activation);
    queues.require(1)?;
    RngWorker { queues }.ready(0, EventSet::IN);
    Ok(())
}

struct RngWorker {
    queues: QueueSet,
}

fn getrandom(buf: &mut [u8]) -> bool {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `buf`.
        let n = unsafe { libc::getrandom(buf[done..].as_mut_ptr().cast(), buf.len() - done, 0) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        done += n as usize;
    }
    true
}

impl Handler for RngWorker {
    fn sources(&self) -> Vec<(std::os::fd::RawFd, u64, EventSet)> {
        self.queues.source(0, 0).into_iter().collect()
    }

    fn ready(&mut self, _token: u64, _events: EventSet) {
        self.queues.drain_notify(0);
        let mut buf = Vec::new();
        while let Some(chain) = self.queues.pop(0) {
            let want = (chain.writable_len() as usize).min(MAX_PER_REQUEST);
            buf.resize(want, 0);
            let written = if getrandom(&mut buf) {
                let mut w = self.queues.writer(&chain);
                w.write(&buf);
                w.written()
            } else {
                0
            };
            self.queues.complete(0, chain.head, written);
        }
        self.queues.notify_driver(0);
    }
}
