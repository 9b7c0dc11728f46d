//! Why a VM ended, and the exit status Tandem reports for it.

/// Exit statuses (documented in `tandem run --help`).
pub mod status {
    pub const POWER_OFF: i32 = 0;
    pub const ERROR: i32 = 1;
    pub const RESET: i32 = 3;
    pub const GUEST_CRASH: i32 = 4;
    pub const KVM_FAILURE: i32 = 5;
    pub const HART_STUCK: i32 = 6;
    pub const SIGNAL_BASE: i32 = 128;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// The guest wrote its exit status to the debug port.
    GuestExit(u32),
    /// The guest powered off.
    PowerOff,
    /// The guest asked for a reset (i8042 or a KVM system event).
    Reset,
    /// A vCPU triple-faulted.
    TripleFault { vcpu: u8 },
    /// KVM could not run the guest (an instruction it cannot emulate, an entry failure).
    KvmFailure { vcpu: u8, detail: String },
    /// A translated hart stopped in a state Tandem cannot continue from.
    HartStuck(String),
    /// Tandem itself failed while the guest ran.
    Error(String),
    /// Tandem was asked to stop (SIGINT, SIGTERM, or Ctrl-A x at the console).
    Signal(i32),
    /// The debugger (`--gdb`) killed the machine.
    DebuggerKill,
}

impl ExitReason {
    pub fn exit_status(&self) -> i32 {
        match self {
            // A shell sees only the low 8 bits; keep what the guest wrote otherwise.
            Self::GuestExit(code) => (*code & 0xff) as i32,
            Self::PowerOff => status::POWER_OFF,
            Self::Reset => status::RESET,
            Self::TripleFault { .. } => status::GUEST_CRASH,
            Self::KvmFailure { .. } => status::KVM_FAILURE,
            Self::HartStuck(_) => status::HART_STUCK,
            Self::Error(_) => status::ERROR,
            Self::Signal(sig) => status::SIGNAL_BASE + sig,
            // As if by SIGKILL, which is what GDB's `kill` sends a process.
            Self::DebuggerKill => status::SIGNAL_BASE + libc::SIGKILL,
        }
    }

    /// A line for stderr, or None when the ending needs no explanation.
    pub fn describe(&self) -> Option<String> {
        match self {
            Self::GuestExit(_) | Self::PowerOff => None,
            Self::Reset => Some("guest requested a reset; VM stopped".into()),
            Self::TripleFault { vcpu } => Some(format!(
                "guest crashed: vCPU {vcpu} triple-faulted (KVM shutdown)"
            )),
            Self::KvmFailure { vcpu, detail } => Some(format!("vCPU {vcpu}: {detail}")),
            Self::HartStuck(why) => Some(format!("guest stuck: {why}")),
            Self::Error(e) => Some(e.clone()),
            Self::Signal(sig) => Some(format!("stopped by signal {sig}")),
            Self::DebuggerKill => Some("killed from gdb".into()),
        }
    }
}
