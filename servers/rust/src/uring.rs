//! A minimal io_uring: the mapped submission and completion rings, the few SQE kinds the
//! server issues, and a provided-buffer ring. Single issuer only (the loop owns the ring).

use crate::sys::{self, Errno, Mmap};
use std::os::raw::c_void;
use std::os::unix::io::RawFd;
use std::ptr;
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};

pub const IORING_SETUP_CQSIZE: u32 = 1 << 3;
pub const IORING_SETUP_SUBMIT_ALL: u32 = 1 << 7;
pub const IORING_SETUP_COOP_TASKRUN: u32 = 1 << 8;
pub const IORING_SETUP_SINGLE_ISSUER: u32 = 1 << 12;
pub const IORING_SETUP_DEFER_TASKRUN: u32 = 1 << 13;

const IORING_FEAT_SINGLE_MMAP: u32 = 1 << 0;

const IORING_OFF_SQ_RING: i64 = 0;
const IORING_OFF_CQ_RING: i64 = 0x8000000;
const IORING_OFF_SQES: i64 = 0x10000000;

const IORING_ENTER_GETEVENTS: u32 = 1 << 0;

const IORING_REGISTER_PBUF_RING: u32 = 22;

const IORING_OP_POLL_ADD: u8 = 6;
const IORING_OP_TIMEOUT: u8 = 11;
const IORING_OP_ACCEPT: u8 = 13;
const IORING_OP_ASYNC_CANCEL: u8 = 14;
const IORING_OP_SEND: u8 = 26;
const IORING_OP_RECV: u8 = 27;

const IOSQE_BUFFER_SELECT: u8 = 1 << 5;
const IORING_RECV_MULTISHOT: u16 = 1 << 1;
const IORING_ACCEPT_MULTISHOT: u16 = 1 << 0;

pub const IORING_CQE_F_BUFFER: u32 = 1 << 0;
pub const IORING_CQE_F_MORE: u32 = 1 << 1;
const IORING_CQE_BUFFER_SHIFT: u32 = 16;

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct SqringOffsets {
    head: u32,
    tail: u32,
    ring_mask: u32,
    ring_entries: u32,
    flags: u32,
    dropped: u32,
    array: u32,
    resv1: u32,
    user_addr: u64,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CqringOffsets {
    head: u32,
    tail: u32,
    ring_mask: u32,
    ring_entries: u32,
    overflow: u32,
    cqes: u32,
    flags: u32,
    resv1: u32,
    user_addr: u64,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct Params {
    sq_entries: u32,
    cq_entries: u32,
    flags: u32,
    sq_thread_cpu: u32,
    sq_thread_idle: u32,
    features: u32,
    wq_fd: u32,
    resv: [u32; 3],
    sq_off: SqringOffsets,
    cq_off: CqringOffsets,
}

/// `struct io_uring_sqe`, with the unions reduced to the members used here.
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct Sqe {
    opcode: u8,
    flags: u8,
    ioprio: u16,
    fd: i32,
    off: u64,
    addr: u64,
    len: u32,
    op_flags: u32,
    user_data: u64,
    buf_group: u16,
    personality: u16,
    file_index: u32,
    addr3: u64,
    pad: u64,
}

/// `struct io_uring_cqe` (no CQE32).
#[repr(C)]
#[derive(Default, Clone, Copy, Debug)]
pub struct Cqe {
    pub user_data: u64,
    pub res: i32,
    pub flags: u32,
}

impl Cqe {
    /// Whether the multishot request that produced this CQE is still armed.
    pub fn more(&self) -> bool {
        self.flags & IORING_CQE_F_MORE != 0
    }

    /// The provided buffer this CQE consumed, if any.
    pub fn buffer_id(&self) -> Option<u16> {
        if self.flags & IORING_CQE_F_BUFFER != 0 {
            Some((self.flags >> IORING_CQE_BUFFER_SHIFT) as u16)
        } else {
            None
        }
    }
}

/// `struct __kernel_timespec`.
#[repr(C)]
pub struct Timespec {
    pub tv_sec: i64,
    pub tv_nsec: i64,
}

#[repr(C)]
struct BufEntry {
    addr: u64,
    len: u32,
    bid: u16,
    // In entry 0 this is the ring's tail, which only the atomic accessor touches.
    resv: u16,
}

#[repr(C)]
struct BufReg {
    ring_addr: u64,
    ring_entries: u32,
    bgid: u16,
    pad: u16,
    resv: [u64; 3],
}

const _: () = assert!(std::mem::size_of::<Params>() == 120);
const _: () = assert!(std::mem::size_of::<Sqe>() == 64);
const _: () = assert!(std::mem::size_of::<Cqe>() == 16);
const _: () = assert!(std::mem::size_of::<BufEntry>() == 16);
const _: () = assert!(std::mem::size_of::<BufReg>() == 40);

impl Sqe {
    /// Multishot accept: one CQE per accepted socket (`res` is the new descriptor).
    pub fn accept_multishot(listener: RawFd, accept_flags: i32, user_data: u64) -> Sqe {
        Sqe {
            opcode: IORING_OP_ACCEPT,
            ioprio: IORING_ACCEPT_MULTISHOT,
            fd: listener,
            op_flags: accept_flags as u32,
            user_data,
            ..Sqe::default()
        }
    }

    /// Multishot recv into buffers picked from provided-buffer group `group`.
    pub fn recv_multishot(fd: RawFd, group: u16, user_data: u64) -> Sqe {
        Sqe {
            opcode: IORING_OP_RECV,
            flags: IOSQE_BUFFER_SELECT,
            ioprio: IORING_RECV_MULTISHOT,
            fd,
            buf_group: group,
            user_data,
            ..Sqe::default()
        }
    }

    /// send(2) of static data, so the bytes outlive the request whatever happens.
    pub fn send(fd: RawFd, data: &'static [u8], msg_flags: i32, user_data: u64) -> Sqe {
        Sqe {
            opcode: IORING_OP_SEND,
            fd,
            addr: data.as_ptr() as u64,
            len: data.len() as u32,
            op_flags: msg_flags as u32,
            user_data,
            ..Sqe::default()
        }
    }

    /// One-shot poll for `events` (POLLIN etc.).
    pub fn poll_add(fd: RawFd, events: u32, user_data: u64) -> Sqe {
        Sqe {
            opcode: IORING_OP_POLL_ADD,
            fd,
            op_flags: events,
            user_data,
            ..Sqe::default()
        }
    }

    /// A timeout that completes with -ETIME once `ts` has passed.
    pub fn timeout(ts: &'static Timespec, user_data: u64) -> Sqe {
        Sqe {
            opcode: IORING_OP_TIMEOUT,
            fd: -1,
            addr: ts as *const Timespec as u64,
            len: 1,
            user_data,
            ..Sqe::default()
        }
    }

    /// Cancels the request submitted with `target` as its user_data.
    pub fn cancel(target: u64, user_data: u64) -> Sqe {
        Sqe {
            opcode: IORING_OP_ASYNC_CANCEL,
            fd: -1,
            addr: target,
            user_data,
            ..Sqe::default()
        }
    }
}

/// Why the ring could not be set up, as a message naming what is missing.
fn setup_error(e: Errno, flags: u32) -> String {
    match e {
        sys::ENOSYS => "io_uring not supported by this kernel (needs Linux 6.1+)".to_string(),
        sys::EPERM => "io_uring is disabled (sysctl kernel.io_uring_disabled)".to_string(),
        sys::EINVAL if flags & IORING_SETUP_SINGLE_ISSUER != 0 => {
            "IORING_SETUP_SINGLE_ISSUER not supported (needs Linux 6.0+)".to_string()
        }
        sys::EINVAL => "IORING_SETUP_DEFER_TASKRUN not supported (needs Linux 6.1+)".to_string(),
        sys::ENOMEM => format!(
            "io_uring_setup: {} (locked-memory limit, RLIMIT_MEMLOCK, too low?)",
            sys::strerror(e)
        ),
        _ => format!("io_uring_setup: {}", sys::strerror(e)),
    }
}

pub struct Ring {
    fd: RawFd,
    /// The flags io_uring_setup was given and accepted.
    pub setup_flags: u32,
    /// The features io_uring_setup reported.
    pub features: u32,
    sq_head: *const AtomicU32,
    sq_tail: *const AtomicU32,
    sq_mask: u32,
    sq_entries: u32,
    sqes: *mut Sqe,
    sq_tail_local: u32,
    cq_head: *const AtomicU32,
    cq_tail: *const AtomicU32,
    cq_mask: u32,
    cqes: *const Cqe,
    cq_head_local: u32,
    _maps: Vec<Mmap>,
}

impl Ring {
    /// The server's ring: SINGLE_ISSUER | DEFER_TASKRUN are required; SUBMIT_ALL and
    /// COOP_TASKRUN are added when the kernel accepts them. The CQ is `cq_entries` long.
    pub fn for_server(sq_entries: u32, cq_entries: u32) -> Result<Ring, String> {
        let required =
            IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
        let optional = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
        match Ring::new(sq_entries, cq_entries, required | optional) {
            Ok(r) => return Ok(r),
            Err(sys::EINVAL) => {}
            Err(e) => return Err(setup_error(e, 0)),
        }
        match Ring::new(sq_entries, cq_entries, required) {
            Ok(r) => return Ok(r),
            Err(sys::EINVAL) => {}
            Err(e) => return Err(setup_error(e, 0)),
        }
        // Tell which of the two required flags is missing.
        let single = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_CQSIZE;
        match Ring::new(sq_entries, cq_entries, single) {
            Ok(_) => Err(setup_error(sys::EINVAL, 0)),
            Err(sys::EINVAL) => Err(setup_error(sys::EINVAL, IORING_SETUP_SINGLE_ISSUER)),
            Err(e) => Err(setup_error(e, 0)),
        }
    }

    /// io_uring_setup with `flags` and the mappings of both rings and the SQE array.
    pub fn new(sq_entries: u32, cq_entries: u32, flags: u32) -> Result<Ring, Errno> {
        let mut p = Params {
            flags,
            cq_entries,
            ..Params::default()
        };
        let fd = unsafe { sys::io_uring_setup(sq_entries, &mut p as *mut Params as *mut c_void)? };
        Ring::map(fd, flags, &p).map_err(|e| {
            sys::close_fd(fd);
            e
        })
    }

    fn map(fd: RawFd, flags: u32, p: &Params) -> Result<Ring, Errno> {
        let sq_size = p.sq_off.array as usize + p.sq_entries as usize * 4;
        let cq_size = p.cq_off.cqes as usize + p.cq_entries as usize * std::mem::size_of::<Cqe>();
        let mut maps = Vec::new();
        let single = p.features & IORING_FEAT_SINGLE_MMAP != 0;
        let sq_map = Mmap::shared(
            fd,
            if single {
                sq_size.max(cq_size)
            } else {
                sq_size
            },
            IORING_OFF_SQ_RING,
        )?;
        let sq = sq_map.as_ptr();
        maps.push(sq_map);
        let cq = if single {
            sq
        } else {
            let cq_map = Mmap::shared(fd, cq_size, IORING_OFF_CQ_RING)?;
            let cq = cq_map.as_ptr();
            maps.push(cq_map);
            cq
        };
        let sqe_map = Mmap::shared(
            fd,
            p.sq_entries as usize * std::mem::size_of::<Sqe>(),
            IORING_OFF_SQES,
        )?;
        let sqes = sqe_map.as_ptr() as *mut Sqe;
        maps.push(sqe_map);

        // The offsets come from the kernel and lie inside the mappings just made.
        let ring = unsafe {
            let at = |base: *mut u8, off: u32| base.add(off as usize);
            let sq_mask = *(at(sq, p.sq_off.ring_mask) as *const u32);
            let sq_entries = *(at(sq, p.sq_off.ring_entries) as *const u32);
            // SQE slot i is always submitted through array slot i, so the indirection
            // array is filled once.
            let array = at(sq, p.sq_off.array) as *mut u32;
            for i in 0..sq_entries {
                array.add(i as usize).write(i);
            }
            Ring {
                fd,
                setup_flags: flags,
                features: p.features,
                sq_head: at(sq, p.sq_off.head) as *const AtomicU32,
                sq_tail: at(sq, p.sq_off.tail) as *const AtomicU32,
                sq_mask,
                sq_entries,
                sqes,
                sq_tail_local: (*(at(sq, p.sq_off.tail) as *const AtomicU32))
                    .load(Ordering::Relaxed),
                cq_head: at(cq, p.cq_off.head) as *const AtomicU32,
                cq_tail: at(cq, p.cq_off.tail) as *const AtomicU32,
                cq_mask: *(at(cq, p.cq_off.ring_mask) as *const u32),
                cqes: at(cq, p.cq_off.cqes) as *const Cqe,
                cq_head_local: (*(at(cq, p.cq_off.head) as *const AtomicU32))
                    .load(Ordering::Relaxed),
                _maps: maps,
            }
        };
        Ok(ring)
    }

    fn sq_head(&self) -> &AtomicU32 {
        unsafe { &*self.sq_head }
    }

    fn sq_tail(&self) -> &AtomicU32 {
        unsafe { &*self.sq_tail }
    }

    fn cq_head(&self) -> &AtomicU32 {
        unsafe { &*self.cq_head }
    }

    fn cq_tail(&self) -> &AtomicU32 {
        unsafe { &*self.cq_tail }
    }

    /// SQEs queued and not yet consumed by the kernel.
    fn pending(&self) -> u32 {
        self.sq_tail_local
            .wrapping_sub(self.sq_head().load(Ordering::Acquire))
    }

    /// Queues an SQE; false if the SQ is still full after submitting it (the kernel took
    /// none, which it only does when short of memory). Only a full SQ submits early.
    pub fn push(&mut self, sqe: Sqe) -> bool {
        if self.pending() >= self.sq_entries {
            let _ = self.submit();
            if self.pending() >= self.sq_entries {
                return false;
            }
        }
        let slot = (self.sq_tail_local & self.sq_mask) as usize;
        unsafe { self.sqes.add(slot).write(sqe) };
        self.sq_tail_local = self.sq_tail_local.wrapping_add(1);
        true
    }

    /// Submits the queued SQEs without waiting.
    pub fn submit(&mut self) -> Result<u32, Errno> {
        self.enter(0, 0)
    }

    /// Publishes queued SQEs and makes one io_uring_enter that submits them and, if
    /// `min_complete` > 0, waits for that many completions (running deferred task work).
    pub fn submit_and_wait(&mut self, min_complete: u32) -> Result<u32, Errno> {
        let flags = if min_complete > 0 {
            IORING_ENTER_GETEVENTS
        } else {
            0
        };
        self.enter(min_complete, flags)
    }

    fn enter(&mut self, min_complete: u32, flags: u32) -> Result<u32, Errno> {
        self.sq_tail().store(self.sq_tail_local, Ordering::Release);
        sys::io_uring_enter(self.fd, self.pending(), min_complete, flags)
    }

    /// Takes the next completion, if any, and frees its CQ slot at once.
    pub fn next_cqe(&mut self) -> Option<Cqe> {
        if self.cq_head_local == self.cq_tail().load(Ordering::Acquire) {
            return None;
        }
        let slot = (self.cq_head_local & self.cq_mask) as usize;
        let cqe = unsafe { self.cqes.add(slot).read() };
        self.cq_head_local = self.cq_head_local.wrapping_add(1);
        self.cq_head().store(self.cq_head_local, Ordering::Release);
        Some(cqe)
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        sys::close_fd(self.fd);
    }
}

/// A provided-buffer ring (IORING_REGISTER_PBUF_RING): `count` buffers of `size` bytes
/// that multishot receives pick from; each is given back once its data is processed.
pub struct BufRing {
    ring: Mmap,
    data: Mmap,
    mask: u16,
    size: u32,
    tail: u16,
}

impl BufRing {
    /// Registers `count` (a power of two, at most 32768) buffers as group `group`.
    pub fn register(ring: &Ring, group: u16, count: u16, size: u32) -> Result<BufRing, Errno> {
        assert!(count.is_power_of_two() && count <= 32768);
        let entries = Mmap::anonymous(count as usize * std::mem::size_of::<BufEntry>())?;
        let data = Mmap::anonymous(count as usize * size as usize)?;
        let reg = BufReg {
            ring_addr: entries.as_ptr() as u64,
            ring_entries: count as u32,
            bgid: group,
            pad: 0,
            resv: [0; 3],
        };
        unsafe {
            sys::io_uring_register(
                ring.fd,
                IORING_REGISTER_PBUF_RING,
                &reg as *const BufReg as *const c_void,
                1,
            )?;
        }
        let mut bufs = BufRing {
            ring: entries,
            data,
            mask: count - 1,
            size,
            tail: 0,
        };
        for bid in 0..count {
            bufs.return_buffer(bid);
        }
        Ok(bufs)
    }

    /// The first `len` bytes of buffer `bid`, which a CQE handed to us.
    pub fn get(&self, bid: u16, len: usize) -> &[u8] {
        assert!(bid <= self.mask && len <= self.size as usize);
        unsafe {
            std::slice::from_raw_parts(
                self.data.as_ptr().add(bid as usize * self.size as usize),
                len,
            )
        }
    }

    /// Puts buffer `bid` back in the ring for the kernel to fill again.
    pub fn return_buffer(&mut self, bid: u16) {
        assert!(bid <= self.mask);
        let addr = self.data.as_ptr() as u64 + bid as u64 * self.size as u64;
        unsafe {
            let e = (self.ring.as_ptr() as *mut BufEntry).add((self.tail & self.mask) as usize);
            // Field by field: entry 0's `resv` is the shared tail.
            ptr::addr_of_mut!((*e).addr).write(addr);
            ptr::addr_of_mut!((*e).len).write(self.size);
            ptr::addr_of_mut!((*e).bid).write(bid);
        }
        self.tail = self.tail.wrapping_add(1);
        self.shared_tail().store(self.tail, Ordering::Release);
    }

    fn shared_tail(&self) -> &AtomicU16 {
        // struct io_uring_buf_ring puts the tail at byte 14, over bufs[0].resv.
        unsafe { &*(self.ring.as_ptr().add(14) as *const AtomicU16) }
    }
}
