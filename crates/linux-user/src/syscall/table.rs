//! The RISC-V (asm-generic) syscall table. Numbers from include/uapi/asm-generic/unistd.h.
//!
//! `pass` rows have identical semantics and layouts on x86-64 (both are 64-bit LP64 with the
//! generic errno and signal numbering); `func` rows need translation; `nosys` rows return
//! ENOSYS on purpose (glibc falls back or copes).

use super::A::{self, *};
use super::{fs, mm, net, proc, Entry, Imp};
use crate::frame;
use crate::signal;

macro_rules! pass {
    ($nr:expr, $name:literal, $host:ident, [$($a:expr),*]) => {
        Entry { nr: $nr, name: $name, args: &[$($a),*], imp: Imp::Pass(libc::$host) }
    };
}
macro_rules! func {
    ($nr:expr, $name:literal, $f:path, [$($a:expr),*]) => {
        Entry { nr: $nr, name: $name, args: &[$($a),*], imp: Imp::Fn($f) }
    };
}
macro_rules! nosys {
    ($nr:expr, $name:literal) => {
        Entry {
            nr: $nr,
            name: $name,
            args: &[],
            imp: Imp::NoSys,
        }
    };
}

const TS: A = P(16); // struct timespec / timeval
const RUSAGE: A = P(144);
const SOCKADDR: A = P(128); // sockaddr_storage-sized output buffers
const SIGSET: A = P(8);

pub static TABLE: &[Entry] = &[
    // Extended attributes.
    pass!(5, "setxattr", SYS_setxattr, [Path, Str, Buf(3), I, X]),
    pass!(6, "lsetxattr", SYS_lsetxattr, [Path, Str, Buf(3), I, X]),
    pass!(7, "fsetxattr", SYS_fsetxattr, [I, Str, Buf(3), I, X]),
    pass!(8, "getxattr", SYS_getxattr, [Path, Str, Buf(3), I]),
    pass!(9, "lgetxattr", SYS_lgetxattr, [Path, Str, Buf(3), I]),
    pass!(10, "fgetxattr", SYS_fgetxattr, [I, Str, Buf(3), I]),
    pass!(11, "listxattr", SYS_listxattr, [Path, Buf(2), I]),
    pass!(12, "llistxattr", SYS_llistxattr, [Path, Buf(2), I]),
    pass!(13, "flistxattr", SYS_flistxattr, [I, Buf(2), I]),
    pass!(14, "removexattr", SYS_removexattr, [Path, Str]),
    pass!(15, "lremovexattr", SYS_lremovexattr, [Path, Str]),
    pass!(16, "fremovexattr", SYS_fremovexattr, [I, Str]),
    // Files and directories.
    pass!(17, "getcwd", SYS_getcwd, [Buf(1), I]),
    pass!(19, "eventfd2", SYS_eventfd2, [I, X]),
    pass!(20, "epoll_create1", SYS_epoll_create1, [X]),
    func!(21, "epoll_ctl", fs::epoll_ctl, [I, I, I, X]),
    func!(22, "epoll_pwait", fs::epoll_pwait, [I, X, I, I, X, I]),
    pass!(23, "dup", SYS_dup, [I]),
    pass!(24, "dup3", SYS_dup3, [I, I, X]),
    func!(25, "fcntl", fs::fcntl, [I, I, X]),
    pass!(26, "inotify_init1", SYS_inotify_init1, [X]),
    pass!(27, "inotify_add_watch", SYS_inotify_add_watch, [I, Path, X]),
    pass!(28, "inotify_rm_watch", SYS_inotify_rm_watch, [I, I]),
    func!(29, "ioctl", fs::ioctl, [I, X, X]),
    pass!(32, "flock", SYS_flock, [I, I]),
    pass!(33, "mknodat", SYS_mknodat, [I, Path, O, X]),
    pass!(34, "mkdirat", SYS_mkdirat, [I, Path, O]),
    pass!(35, "unlinkat", SYS_unlinkat, [I, Path, X]),
    pass!(36, "symlinkat", SYS_symlinkat, [Str, I, Path]),
    pass!(37, "linkat", SYS_linkat, [I, Path, I, Path, X]),
    pass!(38, "renameat", SYS_renameat, [I, Path, I, Path]),
    pass!(43, "statfs", SYS_statfs, [Path, P(120)]),
    pass!(44, "fstatfs", SYS_fstatfs, [I, P(120)]),
    pass!(45, "truncate", SYS_truncate, [Path, I]),
    pass!(46, "ftruncate", SYS_ftruncate, [I, I]),
    pass!(47, "fallocate", SYS_fallocate, [I, X, I, I]),
    pass!(48, "faccessat", SYS_faccessat, [I, Path, O]),
    pass!(49, "chdir", SYS_chdir, [Path]),
    pass!(50, "fchdir", SYS_fchdir, [I]),
    pass!(51, "chroot", SYS_chroot, [Path]),
    pass!(52, "fchmod", SYS_fchmod, [I, O]),
    pass!(53, "fchmodat", SYS_fchmodat, [I, Path, O]),
    pass!(54, "fchownat", SYS_fchownat, [I, Path, I, I, X]),
    pass!(55, "fchown", SYS_fchown, [I, I, I]),
    func!(56, "openat", fs::openat, [I, Path, X, O]),
    pass!(57, "close", SYS_close, [I]),
    pass!(59, "pipe2", SYS_pipe2, [P(8), X]),
    pass!(61, "getdents64", SYS_getdents64, [I, Buf(2), I]),
    pass!(62, "lseek", SYS_lseek, [I, I, I]),
    pass!(63, "read", SYS_read, [I, Buf(2), I]),
    pass!(64, "write", SYS_write, [I, Buf(2), I]),
    func!(65, "readv", fs::readv, [I, X, I]),
    func!(66, "writev", fs::writev, [I, X, I]),
    pass!(67, "pread64", SYS_pread64, [I, Buf(2), I, I]),
    pass!(68, "pwrite64", SYS_pwrite64, [I, Buf(2), I, I]),
    func!(69, "preadv", fs::preadv, [I, X, I, I]),
    func!(70, "pwritev", fs::pwritev, [I, X, I, I]),
    pass!(71, "sendfile", SYS_sendfile, [I, I, P(8), I]),
    func!(72, "pselect6", fs::pselect6, [I, X, X, X, X, X]),
    func!(73, "ppoll", fs::ppoll, [X, I, X, X, I]),
    pass!(74, "signalfd4", SYS_signalfd4, [I, SIGSET, I, X]),
    pass!(76, "splice", SYS_splice, [I, P(8), I, P(8), I, X]),
    pass!(77, "tee", SYS_tee, [I, I, I, X]),
    func!(78, "readlinkat", fs::readlinkat, [I, Path, X, I]),
    func!(79, "newfstatat", fs::newfstatat, [I, Path, X, X]),
    func!(80, "fstat", fs::fstat, [I, X]),
    pass!(81, "sync", SYS_sync, []),
    pass!(82, "fsync", SYS_fsync, [I]),
    pass!(83, "fdatasync", SYS_fdatasync, [I]),
    pass!(84, "sync_file_range", SYS_sync_file_range, [I, I, I, X]),
    pass!(85, "timerfd_create", SYS_timerfd_create, [I, X]),
    pass!(
        86,
        "timerfd_settime",
        SYS_timerfd_settime,
        [I, X, P(32), P(32)]
    ),
    pass!(87, "timerfd_gettime", SYS_timerfd_gettime, [I, P(32)]),
    pass!(88, "utimensat", SYS_utimensat, [I, PathOpt, P(32), X]),
    pass!(90, "capget", SYS_capget, [P(8), P(24)]),
    pass!(91, "capset", SYS_capset, [P(8), P(24)]),
    pass!(92, "personality", SYS_personality, [X]),
    // Processes and threads.
    func!(93, "exit", proc::exit, [I]),
    func!(94, "exit_group", proc::exit_group, [I]),
    pass!(95, "waitid", SYS_waitid, [I, I, P(128), X, RUSAGE]),
    func!(96, "set_tid_address", proc::set_tid_address, [X]),
    pass!(97, "unshare", SYS_unshare, [X]),
    func!(98, "futex", proc::futex, [X, I, I, X, X, I]),
    nosys!(99, "set_robust_list"),
    nosys!(100, "get_robust_list"),
    pass!(101, "nanosleep", SYS_nanosleep, [TS, TS]),
    pass!(102, "getitimer", SYS_getitimer, [I, P(32)]),
    pass!(103, "setitimer", SYS_setitimer, [I, P(32), P(32)]),
    pass!(107, "timer_create", SYS_timer_create, [I, P(64), P(4)]),
    pass!(108, "timer_gettime", SYS_timer_gettime, [I, P(32)]),
    pass!(109, "timer_getoverrun", SYS_timer_getoverrun, [I]),
    pass!(
        110,
        "timer_settime",
        SYS_timer_settime,
        [I, X, P(32), P(32)]
    ),
    pass!(111, "timer_delete", SYS_timer_delete, [I]),
    pass!(112, "clock_settime", SYS_clock_settime, [I, TS]),
    pass!(113, "clock_gettime", SYS_clock_gettime, [I, TS]),
    pass!(114, "clock_getres", SYS_clock_getres, [I, TS]),
    pass!(115, "clock_nanosleep", SYS_clock_nanosleep, [I, X, TS, TS]),
    pass!(118, "sched_setparam", SYS_sched_setparam, [I, P(4)]),
    pass!(
        119,
        "sched_setscheduler",
        SYS_sched_setscheduler,
        [I, I, P(4)]
    ),
    pass!(120, "sched_getscheduler", SYS_sched_getscheduler, [I]),
    pass!(121, "sched_getparam", SYS_sched_getparam, [I, P(4)]),
    pass!(
        122,
        "sched_setaffinity",
        SYS_sched_setaffinity,
        [I, I, Buf(1)]
    ),
    pass!(
        123,
        "sched_getaffinity",
        SYS_sched_getaffinity,
        [I, I, Buf(1)]
    ),
    pass!(124, "sched_yield", SYS_sched_yield, []),
    pass!(
        125,
        "sched_get_priority_max",
        SYS_sched_get_priority_max,
        [I]
    ),
    pass!(
        126,
        "sched_get_priority_min",
        SYS_sched_get_priority_min,
        [I]
    ),
    pass!(
        127,
        "sched_rr_get_interval",
        SYS_sched_rr_get_interval,
        [I, TS]
    ),
    func!(129, "kill", proc::kill, [I, I]),
    func!(130, "tkill", proc::tkill, [I, I]),
    func!(131, "tgkill", proc::tgkill, [I, I, I]),
    // Signals.
    func!(132, "sigaltstack", signal::sys_sigaltstack, [X, X]),
    func!(133, "rt_sigsuspend", signal::sys_rt_sigsuspend, [X, I]),
    func!(134, "rt_sigaction", signal::sys_rt_sigaction, [I, X, X, I]),
    func!(
        135,
        "rt_sigprocmask",
        signal::sys_rt_sigprocmask,
        [I, X, X, I]
    ),
    func!(136, "rt_sigpending", proc::rt_sigpending, [X, I]),
    func!(137, "rt_sigtimedwait", proc::rt_sigtimedwait, [X, X, X, I]),
    pass!(138, "rt_sigqueueinfo", SYS_rt_sigqueueinfo, [I, I, P(128)]),
    func!(139, "rt_sigreturn", frame::sys_rt_sigreturn, []),
    // Identity and resources.
    pass!(140, "setpriority", SYS_setpriority, [I, I, I]),
    pass!(141, "getpriority", SYS_getpriority, [I, I]),
    pass!(143, "setregid", SYS_setregid, [I, I]),
    pass!(144, "setgid", SYS_setgid, [I]),
    pass!(145, "setreuid", SYS_setreuid, [I, I]),
    pass!(146, "setuid", SYS_setuid, [I]),
    pass!(147, "setresuid", SYS_setresuid, [I, I, I]),
    pass!(148, "getresuid", SYS_getresuid, [P(4), P(4), P(4)]),
    pass!(149, "setresgid", SYS_setresgid, [I, I, I]),
    pass!(150, "getresgid", SYS_getresgid, [P(4), P(4), P(4)]),
    pass!(151, "setfsuid", SYS_setfsuid, [I]),
    pass!(152, "setfsgid", SYS_setfsgid, [I]),
    pass!(153, "times", SYS_times, [P(32)]),
    pass!(154, "setpgid", SYS_setpgid, [I, I]),
    pass!(155, "getpgid", SYS_getpgid, [I]),
    pass!(156, "getsid", SYS_getsid, [I]),
    pass!(157, "setsid", SYS_setsid, []),
    pass!(158, "getgroups", SYS_getgroups, [I, Arr(0, 4)]),
    pass!(159, "setgroups", SYS_setgroups, [I, Arr(0, 4)]),
    func!(160, "uname", proc::uname, [X]),
    pass!(161, "sethostname", SYS_sethostname, [Buf(1), I]),
    pass!(162, "setdomainname", SYS_setdomainname, [Buf(1), I]),
    pass!(163, "getrlimit", SYS_getrlimit, [I, P(16)]),
    pass!(164, "setrlimit", SYS_setrlimit, [I, P(16)]),
    pass!(165, "getrusage", SYS_getrusage, [I, RUSAGE]),
    pass!(166, "umask", SYS_umask, [O]),
    func!(167, "prctl", proc::prctl, [I, X, X, X, X]),
    pass!(168, "getcpu", SYS_getcpu, [P(4), P(4), X]),
    pass!(169, "gettimeofday", SYS_gettimeofday, [TS, P(8)]),
    pass!(170, "settimeofday", SYS_settimeofday, [TS, P(8)]),
    pass!(172, "getpid", SYS_getpid, []),
    pass!(173, "getppid", SYS_getppid, []),
    pass!(174, "getuid", SYS_getuid, []),
    pass!(175, "geteuid", SYS_geteuid, []),
    pass!(176, "getgid", SYS_getgid, []),
    pass!(177, "getegid", SYS_getegid, []),
    pass!(178, "gettid", SYS_gettid, []),
    pass!(179, "sysinfo", SYS_sysinfo, [P(112)]),
    // Sockets (layouts are identical on the two 64-bit ABIs).
    pass!(198, "socket", SYS_socket, [I, I, I]),
    pass!(199, "socketpair", SYS_socketpair, [I, I, I, P(8)]),
    pass!(200, "bind", SYS_bind, [I, Buf(2), I]),
    pass!(201, "listen", SYS_listen, [I, I]),
    pass!(202, "accept", SYS_accept, [I, SOCKADDR, P(4)]),
    pass!(203, "connect", SYS_connect, [I, Buf(2), I]),
    pass!(204, "getsockname", SYS_getsockname, [I, SOCKADDR, P(4)]),
    pass!(205, "getpeername", SYS_getpeername, [I, SOCKADDR, P(4)]),
    pass!(206, "sendto", SYS_sendto, [I, Buf(2), I, X, Buf(5), I]),
    pass!(
        207,
        "recvfrom",
        SYS_recvfrom,
        [I, Buf(2), I, X, SOCKADDR, P(4)]
    ),
    pass!(208, "setsockopt", SYS_setsockopt, [I, I, I, Buf(4), I]),
    func!(209, "getsockopt", net::getsockopt, [I, I, I, X, X]),
    pass!(210, "shutdown", SYS_shutdown, [I, I]),
    func!(211, "sendmsg", net::sendmsg, [I, X, X]),
    func!(212, "recvmsg", net::recvmsg, [I, X, X]),
    // Memory.
    pass!(213, "readahead", SYS_readahead, [I, I, I]),
    func!(214, "brk", mm::brk, [X]),
    func!(215, "munmap", mm::munmap, [X, I]),
    func!(216, "mremap", mm::mremap, [X, I, I, X, X]),
    func!(220, "clone", proc::clone, [X, X, X, X, X]),
    func!(221, "execve", proc::execve, [Path, X, X]),
    func!(222, "mmap", mm::mmap, [X, I, X, X, I, X]),
    pass!(223, "fadvise64", SYS_fadvise64, [I, I, I, I]),
    func!(226, "mprotect", mm::mprotect, [X, I, X]),
    pass!(227, "msync", SYS_msync, [Buf(1), I, X]),
    pass!(228, "mlock", SYS_mlock, [Buf(1), I]),
    pass!(229, "munlock", SYS_munlock, [Buf(1), I]),
    pass!(230, "mlockall", SYS_mlockall, [X]),
    pass!(231, "munlockall", SYS_munlockall, []),
    func!(233, "madvise", mm::madvise, [X, I, I]),
    pass!(
        240,
        "rt_tgsigqueueinfo",
        SYS_rt_tgsigqueueinfo,
        [I, I, I, P(128)]
    ),
    pass!(242, "accept4", SYS_accept4, [I, SOCKADDR, P(4), X]),
    func!(243, "recvmmsg", net::recvmmsg, [I, X, I, X, X]),
    nosys!(258, "riscv_hwprobe"),
    func!(259, "riscv_flush_icache", mm::flush_icache, [X, X, X]),
    pass!(260, "wait4", SYS_wait4, [I, P(4), X, RUSAGE]),
    pass!(261, "prlimit64", SYS_prlimit64, [I, I, P(16), P(16)]),
    pass!(267, "syncfs", SYS_syncfs, [I]),
    func!(269, "sendmmsg", net::sendmmsg, [I, X, I, X]),
    pass!(276, "renameat2", SYS_renameat2, [I, Path, I, Path, X]),
    pass!(278, "getrandom", SYS_getrandom, [Buf(1), I, X]),
    pass!(279, "memfd_create", SYS_memfd_create, [Str, X]),
    func!(281, "execveat", proc::execveat, [I, Str, X, X, X]),
    pass!(283, "membarrier", SYS_membarrier, [I, X, I]),
    pass!(284, "mlock2", SYS_mlock2, [Buf(1), I, X]),
    pass!(
        285,
        "copy_file_range",
        SYS_copy_file_range,
        [I, P(8), I, P(8), I, X]
    ),
    func!(286, "preadv2", fs::preadv, [I, X, I, I, I, X]),
    func!(287, "pwritev2", fs::pwritev, [I, X, I, I, I, X]),
    pass!(291, "statx", SYS_statx, [I, PathOpt, X, X, P(256)]),
    nosys!(293, "rseq"),
    pass!(
        424,
        "pidfd_send_signal",
        SYS_pidfd_send_signal,
        [I, I, P(128), X]
    ),
    pass!(434, "pidfd_open", SYS_pidfd_open, [I, X]),
    nosys!(435, "clone3"),
    pass!(436, "close_range", SYS_close_range, [I, I, X]),
    pass!(439, "faccessat2", SYS_faccessat2, [I, Path, O, X]),
];
