//! The main thread's loop while a VM runs, shared by every machine: console input into the
//! UART, host signals, Ctrl-A x, and the VM's stop switch.

use std::sync::Mutex;

use devices::virtio::console::ConsoleInput as VirtioConsoleInput;
use devices::Serial;
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;

use crate::stdio::{self, ConsoleInput, EscapeFilter};
use crate::{signals, ExitReason, VmControl};

/// What failed on the host, and why.
pub(crate) type HostError = (&'static str, std::io::Error);

fn host(what: &'static str) -> impl FnOnce(std::io::Error) -> HostError {
    move |e| (what, e)
}

const EVENT_STOP: u64 = 0;
const EVENT_SIGNAL: u64 = 1;
const EVENT_STDIN: u64 = 2;

/// Where console input goes: the UART's receive FIFO or a virtio-console.
pub(crate) trait ConsoleSink {
    /// Takes what fits of `bytes`; returns how much did.
    fn enqueue(&self, bytes: &[u8]) -> usize;
}

impl ConsoleSink for Mutex<Serial> {
    fn enqueue(&self, bytes: &[u8]) -> usize {
        vm_core::bus::lock_mutex(self).enqueue_input(bytes)
    }
}

impl ConsoleSink for VirtioConsoleInput {
    fn enqueue(&self, bytes: &[u8]) -> usize {
        VirtioConsoleInput::enqueue(self, bytes)
    }
}

/// The main thread's loop: console input, host signals, and the VM's stop switch.
pub(crate) fn serve(
    control: &VmControl,
    signal_evt: &EventFd,
    console: &dyn ConsoleSink,
    console_on_stdio: bool,
) -> Result<(), HostError> {
    use std::os::fd::AsRawFd;
    let epoll = Epoll::new().map_err(host("cannot create epoll"))?;
    let add = |fd: i32, data: u64| {
        epoll.ctl(
            ControlOperation::Add,
            fd,
            EpollEvent::new(EventSet::IN, data),
        )
    };
    add(control.wake_fd().as_raw_fd(), EVENT_STOP).map_err(host("epoll"))?;
    add(signal_evt.as_raw_fd(), EVENT_SIGNAL).map_err(host("epoll"))?;
    // Regular files and /dev/null cannot be polled; the guest then simply gets no input.
    let stdin_polled = console_on_stdio && add(0, EVENT_STDIN).is_ok();
    let mut filter = EscapeFilter::default();
    let mut pending: Vec<u8> = Vec::new();
    let mut events = [EpollEvent::default(); 4];
    while !control.is_stopping() {
        // While input waits for room in the console's buffer, poll again soon.
        let timeout = if pending.is_empty() { -1 } else { 10 };
        let n = match epoll.wait(timeout, &mut events) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(("epoll wait", e)),
        };
        for event in &events[..n] {
            match event.data() {
                // Not drained: every machine in the process must see it.
                EVENT_SIGNAL => {
                    if let Some(sig) = signals::received() {
                        control.stop(ExitReason::Signal(sig));
                    }
                }
                EVENT_STDIN if stdin_polled && pending.is_empty() => {
                    let mut buf = [0u8; 256];
                    match stdio::read_stdin(&mut buf) {
                        Ok(Some(n)) => match filter.feed(&buf[..n]) {
                            ConsoleInput::Quit => control.stop(ExitReason::Signal(libc::SIGINT)),
                            ConsoleInput::Bytes(bytes) => pending.extend(bytes),
                        },
                        Ok(None) | Err(_) => {
                            // End of input: stop polling it; the guest keeps running.
                            let _ = epoll.ctl(ControlOperation::Delete, 0, EpollEvent::default());
                        }
                    }
                }
                _ => {}
            }
        }
        if !pending.is_empty() {
            let taken = console.enqueue(&pending);
            pending.drain(..taken);
        }
    }
    Ok(())
}
