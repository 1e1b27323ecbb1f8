//! Direct declarations of the libc functions the servers use (no crates are available),
//! wrapped in small safe functions that return the errno on failure. All `unsafe` needed
//! for system calls lives here and in `uring.rs`.

use std::os::raw::{c_int, c_long, c_ulong, c_void};
use std::os::unix::io::RawFd;
use std::ptr;

#[cfg(not(target_os = "linux"))]
compile_error!("the benchmark servers are Linux-only (epoll, signalfd, io_uring)");

/// An errno value.
pub type Errno = i32;

pub const EPERM: Errno = 1;
pub const EINTR: Errno = 4;
pub const EBADF: Errno = 9;
pub const EAGAIN: Errno = 11;
pub const ENOMEM: Errno = 12;
pub const EBUSY: Errno = 16;
pub const EEXIST: Errno = 17;
pub const EINVAL: Errno = 22;
pub const ENFILE: Errno = 23;
pub const EMFILE: Errno = 24;
pub const ENOSYS: Errno = 38;
pub const ENONET: Errno = 64;
pub const EPROTO: Errno = 71;
pub const ENOPROTOOPT: Errno = 92;
pub const EOPNOTSUPP: Errno = 95;
pub const ENETDOWN: Errno = 100;
pub const ENETUNREACH: Errno = 101;
pub const ECONNABORTED: Errno = 103;
pub const ENOBUFS: Errno = 105;
pub const EHOSTDOWN: Errno = 112;
pub const EHOSTUNREACH: Errno = 113;

pub const AF_INET: c_int = 2;
pub const SOCK_STREAM: c_int = 1;
pub const SOCK_NONBLOCK: c_int = 0o4000;
pub const SOCK_CLOEXEC: c_int = 0o2000000;
const SOL_SOCKET: c_int = 1;
const SO_REUSEADDR: c_int = 2;
const IPPROTO_TCP: c_int = 6;
const TCP_NODELAY: c_int = 1;
pub const MSG_NOSIGNAL: c_int = 0x4000;
pub const SHUT_RDWR: c_int = 2;

pub const EPOLL_CLOEXEC: c_int = 0o2000000;
pub const EPOLL_CTL_ADD: c_int = 1;
pub const EPOLL_CTL_DEL: c_int = 2;
pub const EPOLL_CTL_MOD: c_int = 3;
pub const EPOLLIN: u32 = 0x001;
pub const EPOLLOUT: u32 = 0x004;
pub const EPOLLERR: u32 = 0x008;
pub const EPOLLHUP: u32 = 0x010;

pub const POLLIN: u32 = 0x001;

const RLIMIT_NOFILE: c_int = 7;
pub const SIGINT: c_int = 2;
pub const SIGPIPE: c_int = 13;
pub const SIGTERM: c_int = 15;
const SIG_BLOCK: c_int = 0;
const SIG_IGN: usize = 1;
const SFD_NONBLOCK: c_int = 0o4000;
const SFD_CLOEXEC: c_int = 0o2000000;

const PROT_READ: c_int = 1;
const PROT_WRITE: c_int = 2;
const MAP_SHARED: c_int = 0x01;
const MAP_PRIVATE: c_int = 0x02;
const MAP_ANONYMOUS: c_int = 0x20;
const MAP_POPULATE: c_int = 0x8000;

const SYS_IO_URING_SETUP: c_long = 425;
const SYS_IO_URING_ENTER: c_long = 426;
const SYS_IO_URING_REGISTER: c_long = 427;

#[repr(C)]
#[derive(Clone, Copy)]
struct SockAddrIn {
    family: u16,
    port_be: u16,
    addr_be: u32,
    zero: [u8; 8],
}

#[repr(C)]
struct RLimit {
    cur: c_ulong,
    max: c_ulong,
}

/// `struct utsname` as Linux and glibc lay it out: six 65-byte strings.
#[repr(C)]
struct UtsName {
    fields: [[u8; 65]; 6],
}

/// glibc's sigset_t: 1024 bits.
#[repr(C)]
pub struct SigSet {
    bits: [c_ulong; 1024 / (8 * std::mem::size_of::<c_ulong>())],
}

/// `struct epoll_event`, which the kernel declares packed on x86-64 only.
#[cfg_attr(target_arch = "x86_64", repr(C, packed))]
#[cfg_attr(not(target_arch = "x86_64"), repr(C))]
#[derive(Clone, Copy)]
pub struct EpollEvent {
    pub events: u32,
    pub data: u64,
}

#[cfg(target_arch = "x86_64")]
const _: () = assert!(std::mem::size_of::<EpollEvent>() == 12);
#[cfg(not(target_arch = "x86_64"))]
const _: () = assert!(std::mem::size_of::<EpollEvent>() == 16);
const _: () = assert!(std::mem::size_of::<SockAddrIn>() == 16);

impl EpollEvent {
    pub const fn zeroed() -> EpollEvent {
        EpollEvent { events: 0, data: 0 }
    }
}

extern "C" {
    fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int;
    fn setsockopt(fd: c_int, level: c_int, name: c_int, value: *const c_void, len: u32) -> c_int;
    fn bind(fd: c_int, addr: *const SockAddrIn, len: u32) -> c_int;
    fn listen(fd: c_int, backlog: c_int) -> c_int;
    fn getsockname(fd: c_int, addr: *mut SockAddrIn, len: *mut u32) -> c_int;
    fn accept4(fd: c_int, addr: *mut c_void, len: *mut u32, flags: c_int) -> c_int;
    fn recv(fd: c_int, buf: *mut c_void, len: usize, flags: c_int) -> isize;
    fn send(fd: c_int, buf: *const c_void, len: usize, flags: c_int) -> isize;
    fn shutdown(fd: c_int, how: c_int) -> c_int;
    fn close(fd: c_int) -> c_int;

    fn epoll_create1(flags: c_int) -> c_int;
    fn epoll_ctl(epfd: c_int, op: c_int, fd: c_int, event: *mut EpollEvent) -> c_int;
    fn epoll_wait(epfd: c_int, events: *mut EpollEvent, max: c_int, timeout: c_int) -> c_int;

    fn uname(buf: *mut UtsName) -> c_int;

    fn getrlimit(resource: c_int, rlim: *mut RLimit) -> c_int;
    fn setrlimit(resource: c_int, rlim: *const RLimit) -> c_int;

    fn sigemptyset(set: *mut SigSet) -> c_int;
    fn sigaddset(set: *mut SigSet, signum: c_int) -> c_int;
    fn sigprocmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
    fn signalfd(fd: c_int, mask: *const SigSet, flags: c_int) -> c_int;
    fn signal(signum: c_int, handler: usize) -> usize;

    fn mmap(
        addr: *mut c_void,
        len: usize,
        prot: c_int,
        flags: c_int,
        fd: c_int,
        off: i64,
    ) -> *mut c_void;
    fn munmap(addr: *mut c_void, len: usize) -> c_int;

    fn syscall(num: c_long, ...) -> c_long;
}

fn errno() -> Errno {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn check(ret: c_int) -> Result<c_int, Errno> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret)
    }
}

fn check_size(ret: isize) -> Result<usize, Errno> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret as usize)
    }
}

/// The text of an errno, e.g. "Address already in use (os error 98)".
pub fn strerror(e: Errno) -> String {
    std::io::Error::from_raw_os_error(e).to_string()
}

// ---- sockets ----

/// A listening IPv4 TCP socket with SO_REUSEADDR; returns it and the bound (ip, port).
pub fn tcp_listen(
    ip: [u8; 4],
    port: u16,
    backlog: i32,
    nonblocking: bool,
) -> Result<(RawFd, [u8; 4], u16), (&'static str, Errno)> {
    let ty = SOCK_STREAM | SOCK_CLOEXEC | if nonblocking { SOCK_NONBLOCK } else { 0 };
    let fd = check(unsafe { socket(AF_INET, ty, 0) }).map_err(|e| ("socket", e))?;
    let result = (|| {
        let one: c_int = 1;
        let len = std::mem::size_of::<c_int>() as u32;
        check(unsafe { setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one as *const c_int as _, len) })
            .map_err(|e| ("setsockopt(SO_REUSEADDR)", e))?;
        let addr = SockAddrIn {
            family: AF_INET as u16,
            port_be: port.to_be(),
            addr_be: u32::from_ne_bytes(ip),
            zero: [0; 8],
        };
        let len = std::mem::size_of::<SockAddrIn>() as u32;
        check(unsafe { bind(fd, &addr, len) }).map_err(|e| ("bind", e))?;
        check(unsafe { listen(fd, backlog) }).map_err(|e| ("listen", e))?;
        let mut bound = addr;
        let mut len = std::mem::size_of::<SockAddrIn>() as u32;
        check(unsafe { getsockname(fd, &mut bound, &mut len) }).map_err(|e| ("getsockname", e))?;
        Ok((bound.addr_be.to_ne_bytes(), u16::from_be(bound.port_be)))
    })();
    match result {
        Ok((ip, port)) => Ok((fd, ip, port)),
        Err(e) => {
            close_fd(fd);
            Err(e)
        }
    }
}

pub fn set_nodelay(fd: RawFd) -> Result<(), Errno> {
    let one: c_int = 1;
    let len = std::mem::size_of::<c_int>() as u32;
    check(unsafe { setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one as *const c_int as _, len) })
        .map(|_| ())
}

/// accept4 without asking for the peer address.
pub fn accept(fd: RawFd, flags: c_int) -> Result<RawFd, Errno> {
    check(unsafe { accept4(fd, ptr::null_mut(), ptr::null_mut(), flags) })
}

pub fn recv_into(fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
    check_size(unsafe { recv(fd, buf.as_mut_ptr() as *mut c_void, buf.len(), 0) })
}

pub fn send_from(fd: RawFd, buf: &[u8], flags: c_int) -> Result<usize, Errno> {
    check_size(unsafe { send(fd, buf.as_ptr() as *const c_void, buf.len(), flags) })
}

pub fn shutdown_fd(fd: RawFd, how: c_int) -> Result<(), Errno> {
    check(unsafe { shutdown(fd, how) }).map(|_| ())
}

/// close(2); the descriptor is released even when close reports an error, so there is
/// nothing to do about one.
pub fn close_fd(fd: RawFd) {
    unsafe { close(fd) };
}

// ---- epoll ----

pub fn epoll_new() -> Result<RawFd, Errno> {
    check(unsafe { epoll_create1(EPOLL_CLOEXEC) })
}

pub fn epoll_control(epfd: RawFd, op: c_int, fd: RawFd, events: u32) -> Result<(), Errno> {
    let mut ev = EpollEvent {
        events,
        data: fd as u64,
    };
    check(unsafe { epoll_ctl(epfd, op, fd, &mut ev) }).map(|_| ())
}

/// epoll_wait for up to `timeout_ms` (-1: no timeout); returns how many entries of
/// `events` were filled.
pub fn epoll_wait_for(
    epfd: RawFd,
    events: &mut [EpollEvent],
    timeout_ms: i32,
) -> Result<usize, Errno> {
    let max = events.len().min(c_int::MAX as usize) as c_int;
    check(unsafe { epoll_wait(epfd, events.as_mut_ptr(), max, timeout_ms) }).map(|n| n as usize)
}

// ---- process setup ----

/// The kernel release, as `uname -r` prints it.
pub fn kernel_release() -> Result<String, Errno> {
    let mut uts = UtsName {
        fields: [[0; 65]; 6],
    };
    check(unsafe { uname(&mut uts) })?;
    let release = &uts.fields[2];
    let len = release
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(release.len());
    Ok(String::from_utf8_lossy(&release[..len]).into_owned())
}

/// The soft RLIMIT_NOFILE: every descriptor the process can get is below it.
pub fn nofile_limit() -> Result<c_ulong, Errno> {
    let mut lim = RLimit { cur: 0, max: 0 };
    check(unsafe { getrlimit(RLIMIT_NOFILE, &mut lim) })?;
    Ok(lim.cur)
}

/// Raises the soft RLIMIT_NOFILE to the hard limit (or to fs.nr_open when the hard limit
/// is unlimited, which the kernel refuses as a soft limit).
pub fn raise_nofile_limit() -> Result<(), Errno> {
    let mut lim = RLimit { cur: 0, max: 0 };
    check(unsafe { getrlimit(RLIMIT_NOFILE, &mut lim) })?;
    if lim.cur >= lim.max {
        return Ok(());
    }
    let wanted = RLimit {
        cur: lim.max,
        max: lim.max,
    };
    if check(unsafe { setrlimit(RLIMIT_NOFILE, &wanted) }).is_ok() {
        return Ok(());
    }
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<c_ulong>().ok())
        .unwrap_or(lim.cur);
    let wanted = RLimit {
        cur: nr_open.min(lim.max),
        max: lim.max,
    };
    check(unsafe { setrlimit(RLIMIT_NOFILE, &wanted) }).map(|_| ())
}

/// Blocks `signals` for the (single-threaded) process and returns a non-blocking signalfd
/// that reports them.
pub fn block_into_signalfd(signals: &[c_int]) -> Result<RawFd, Errno> {
    let mut set = SigSet {
        bits: [0; 1024 / (8 * std::mem::size_of::<c_ulong>())],
    };
    unsafe {
        check(sigemptyset(&mut set))?;
        for &sig in signals {
            check(sigaddset(&mut set, sig))?;
        }
        check(sigprocmask(SIG_BLOCK, &set, ptr::null_mut()))?;
        check(signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC))
    }
}

pub fn ignore_signal(sig: c_int) {
    unsafe { signal(sig, SIG_IGN) };
}

// ---- memory maps ----

/// An mmap'ed region, unmapped on drop.
pub struct Mmap {
    ptr: *mut u8,
    len: usize,
}

impl Mmap {
    /// Private anonymous read-write memory (zero-filled).
    pub fn anonymous(len: usize) -> Result<Mmap, Errno> {
        Self::map(len, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    }

    /// A shared read-write mapping of `fd` at `offset`, populated at once.
    pub fn shared(fd: RawFd, len: usize, offset: i64) -> Result<Mmap, Errno> {
        Self::map(len, MAP_SHARED | MAP_POPULATE, fd, offset)
    }

    fn map(len: usize, flags: c_int, fd: RawFd, offset: i64) -> Result<Mmap, Errno> {
        let p = unsafe {
            mmap(
                ptr::null_mut(),
                len,
                PROT_READ | PROT_WRITE,
                flags,
                fd,
                offset,
            )
        };
        if p as usize == usize::MAX {
            Err(errno())
        } else {
            Ok(Mmap {
                ptr: p as *mut u8,
                len,
            })
        }
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        unsafe { munmap(self.ptr as *mut c_void, self.len) };
    }
}

// ---- io_uring system calls (the structures are in uring.rs) ----

/// io_uring_setup(2). `params` must point to a `struct io_uring_params`.
pub(crate) unsafe fn io_uring_setup(entries: u32, params: *mut c_void) -> Result<RawFd, Errno> {
    let ret = syscall(SYS_IO_URING_SETUP, entries as c_ulong, params);
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret as RawFd)
    }
}

/// io_uring_enter(2) without a signal mask.
pub fn io_uring_enter(
    fd: RawFd,
    to_submit: u32,
    min_complete: u32,
    flags: u32,
) -> Result<u32, Errno> {
    let ret = unsafe {
        syscall(
            SYS_IO_URING_ENTER,
            fd as c_long,
            to_submit as c_ulong,
            min_complete as c_ulong,
            flags as c_ulong,
            ptr::null::<c_void>(),
            0 as c_ulong,
        )
    };
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret as u32)
    }
}

/// io_uring_register(2). `arg` must be what `opcode` expects, `nr_args` of them.
pub(crate) unsafe fn io_uring_register(
    fd: RawFd,
    opcode: u32,
    arg: *const c_void,
    nr_args: u32,
) -> Result<c_long, Errno> {
    // Every argument is passed as a full register-width integer: syscall(2) reads longs.
    let ret = syscall(
        SYS_IO_URING_REGISTER,
        fd as c_long,
        opcode as c_ulong,
        arg,
        nr_args as c_ulong,
    );
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret)
    }
}
