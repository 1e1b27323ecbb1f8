//! The io_uring server: multishot accept, multishot recv from a provided buffer ring, at
//! most one send in flight per connection, one io_uring_enter per loop turn. See
//! servers/README.md.

use orch_servers::http::{owed_slice, Framer, RESPONSE_LEN};
use orch_servers::server::{self, die, Zeroable};
use orch_servers::sys;
use orch_servers::uring::{BufRing, Cqe, Ring, Sqe, Timespec};
use std::os::unix::io::RawFd;

const NAME: &str = "io_uring";
const SQ_ENTRIES: u32 = 4096;
const CQ_ENTRIES: u32 = 4 * SQ_ENTRIES;
const BUFFER_COUNT: u16 = 4096;
const BUFFER_SIZE: u32 = 4096;
const BUFFER_GROUP: u16 = 0;

// user_data: the operation in the high 32 bits, its descriptor in the low 32.
const OP_ACCEPT: u64 = 1;
const OP_RECV: u64 = 2;
const OP_SEND: u64 = 3;
const OP_SIGNAL: u64 = 4;
const OP_TIMEOUT: u64 = 5;
const OP_CANCEL: u64 = 6;

static ACCEPT_RETRY: Timespec = Timespec {
    tv_sec: 0,
    tv_nsec: server::ACCEPT_RETRY_MS as i64 * 1_000_000,
};

fn op_data(op: u64, fd: RawFd) -> u64 {
    op << 32 | fd as u32 as u64
}

#[derive(Clone, Copy, Default)]
struct Conn {
    framer: Framer,
    /// Response bytes not confirmed sent, including those in flight.
    owed: u64,
    /// The multishot recv is armed.
    recv_armed: bool,
    /// A send is in flight.
    sending: bool,
    /// The peer sent EOF: close once owed is flushed.
    eof: bool,
    /// Shut down: close once no operation is in flight.
    closing: bool,
}

// Safety: integers, bools and a Framer of integers.
unsafe impl Zeroable for Conn {}

struct Server {
    ring: Ring,
    buffer_ring: BufRing,
    listener: RawFd,
    signal_fd: RawFd,
    /// Indexed by descriptor.
    conns: Vec<Conn>,
    accept_armed: bool,
    accept_paused: bool,
    signal_armed: bool,
    timeout_armed: bool,
    cancel_armed: bool,
    stopping: bool,
    /// An EINVAL before the first success means the kernel lacks the multishot flag.
    accept_proven: bool,
    recv_proven: bool,
}

impl Server {
    fn arm_accept(&mut self) {
        let sqe = Sqe::accept_multishot(
            self.listener,
            sys::SOCK_CLOEXEC,
            op_data(OP_ACCEPT, self.listener),
        );
        if self.ring.push(sqe) {
            self.accept_armed = true;
        }
    }

    fn arm_signal(&mut self) {
        let sqe = Sqe::poll_add(
            self.signal_fd,
            sys::POLLIN,
            op_data(OP_SIGNAL, self.signal_fd),
        );
        if self.ring.push(sqe) {
            self.signal_armed = true;
        }
    }

    fn arm_timeout(&mut self) {
        if self
            .ring
            .push(Sqe::timeout(&ACCEPT_RETRY, op_data(OP_TIMEOUT, -1)))
        {
            self.timeout_armed = true;
        }
    }

    fn arm_cancel(&mut self) {
        let sqe = Sqe::cancel(
            op_data(OP_ACCEPT, self.listener),
            op_data(OP_CANCEL, self.listener),
        );
        if self.ring.push(sqe) {
            self.cancel_armed = true;
        }
    }

    /// Queues whichever of the server's own operations should be in flight and is not,
    /// once per loop turn: one that could not be queued (SQ full) is retried next turn.
    fn arm_server_ops(&mut self) {
        if self.stopping {
            if self.accept_armed && !self.cancel_armed {
                self.arm_cancel();
            }
            return;
        }
        if !self.signal_armed {
            self.arm_signal();
        }
        if self.accept_paused && !self.timeout_armed {
            self.arm_timeout();
        }
        if !self.accept_paused && !self.accept_armed {
            self.arm_accept();
        }
    }

    fn pause_accepting(&mut self) {
        self.accept_paused = true;
    }

    fn resume_accepting(&mut self) {
        self.accept_paused = false;
    }

    /// Closes the descriptor of a closing connection once nothing in flight can still
    /// complete for it, so no completion ever names a reused descriptor.
    fn release_if_idle(&mut self, fd: RawFd) {
        let c = &mut self.conns[fd as usize];
        if c.recv_armed || c.sending {
            return;
        }
        sys::close_fd(fd);
        *c = Conn::default();
        self.resume_accepting();
    }

    fn close_connection(&mut self, fd: RawFd) {
        let c = &mut self.conns[fd as usize];
        if !c.closing {
            c.closing = true;
            // Ends the multishot recv and any send waiting for room, promptly.
            let _ = sys::shutdown_fd(fd, sys::SHUT_RDWR);
        }
        self.release_if_idle(fd);
    }

    fn arm_recv(&mut self, fd: RawFd) {
        if !self
            .ring
            .push(Sqe::recv_multishot(fd, BUFFER_GROUP, op_data(OP_RECV, fd)))
        {
            self.close_connection(fd);
            return;
        }
        self.conns[fd as usize].recv_armed = true;
    }

    /// Starts a send of what is owed unless one is in flight: its completion sends the
    /// rest, answers owed meanwhile included.
    fn send_owed(&mut self, fd: RawFd) {
        let c = self.conns[fd as usize];
        if c.sending || c.owed == 0 {
            return;
        }
        let sqe = Sqe::send(
            fd,
            owed_slice(c.owed),
            sys::MSG_NOSIGNAL,
            op_data(OP_SEND, fd),
        );
        if !self.ring.push(sqe) {
            self.close_connection(fd);
            return;
        }
        self.conns[fd as usize].sending = true;
    }

    fn open_connection(&mut self, fd: RawFd) {
        if fd as usize >= self.conns.len() {
            sys::close_fd(fd);
            return;
        }
        let _ = sys::set_nodelay(fd);
        self.conns[fd as usize] = Conn::default();
        self.arm_recv(fd);
    }

    fn on_accept(&mut self, cqe: &Cqe) {
        if !cqe.more() {
            self.accept_armed = false;
        }
        if cqe.res >= 0 {
            self.accept_proven = true;
            self.open_connection(cqe.res);
        } else if cqe.res == -sys::EINVAL && !self.accept_proven {
            die(
                NAME,
                "io_uring: multishot accept not supported (needs Linux 5.19+)",
            );
        } else if !self.accept_armed && !server::accept_error_retried(-cqe.res) {
            self.pause_accepting();
        }
    }

    fn on_recv(&mut self, fd: RawFd, cqe: &Cqe) {
        let i = fd as usize;
        let mut framed = Ok(0);

        if !cqe.more() {
            self.conns[i].recv_armed = false;
        }
        if let Some(bid) = cqe.buffer_id() {
            if cqe.res > 0 && !self.conns[i].closing {
                framed = self.conns[i]
                    .framer
                    .consume(self.buffer_ring.get(bid, cqe.res as usize));
            }
            self.buffer_ring.return_buffer(bid);
        }
        if cqe.res == -sys::EINVAL && !self.recv_proven {
            die(
                NAME,
                "io_uring: multishot recv not supported (needs Linux 6.0+)",
            );
        }
        self.recv_proven = true;

        let c = self.conns[i];
        if c.closing {
            self.release_if_idle(fd);
        } else if framed.is_err() || (cqe.res < 0 && cqe.res != -sys::ENOBUFS) {
            self.close_connection(fd);
        } else if cqe.res == 0 {
            self.conns[i].eof = true;
            // A send in flight still owes answers: its completion closes.
            if !c.sending {
                self.close_connection(fd);
            }
        } else {
            self.conns[i].owed += framed.unwrap_or(0) * RESPONSE_LEN;
            // Ended without EOF (ENOBUFS, or the CQ overflowed): the connection lives on.
            if !c.recv_armed {
                self.arm_recv(fd);
            }
            self.send_owed(fd);
        }
    }

    fn on_send(&mut self, fd: RawFd, cqe: &Cqe) {
        let i = fd as usize;

        self.conns[i].sending = false;
        if self.conns[i].closing {
            self.release_if_idle(fd);
        } else if cqe.res <= 0 {
            self.close_connection(fd);
        } else {
            self.conns[i].owed -= cqe.res as u64;
            if self.conns[i].owed > 0 {
                self.send_owed(fd);
            } else if self.conns[i].eof {
                self.close_connection(fd);
            }
        }
    }

    fn on_signal(&mut self, cqe: &Cqe) {
        self.signal_armed = false;
        // A failed poll is re-armed by the next turn; a signal stops the server.
        if cqe.res >= 0 {
            self.stopping = true;
        }
    }

    fn on_timeout(&mut self) {
        self.timeout_armed = false;
        self.resume_accepting();
    }

    fn on_cancel(&mut self, cqe: &Cqe) {
        // Found, the accept ends with its own completion; not found, it already has.
        if cqe.res < 0 {
            self.accept_armed = false;
        }
    }

    fn on_completion(&mut self, cqe: &Cqe) {
        let fd = cqe.user_data as u32 as RawFd;

        match cqe.user_data >> 32 {
            OP_ACCEPT => self.on_accept(cqe),
            OP_RECV => self.on_recv(fd, cqe),
            OP_SEND => self.on_send(fd, cqe),
            OP_SIGNAL => self.on_signal(cqe),
            OP_TIMEOUT => self.on_timeout(),
            OP_CANCEL => self.on_cancel(cqe),
            _ => {}
        }
    }
}

fn main() {
    let s = server::start(NAME, false);
    let conns = server::alloc_conn_table(server::conn_table_size(s.fd_limit))
        .unwrap_or_else(|| die(NAME, "cannot allocate the connection table"));
    let ring = Ring::for_server(SQ_ENTRIES, CQ_ENTRIES).unwrap_or_else(|m| die(NAME, &m));
    let details = format!(
        "setup_flags={:#x} features={:#x}",
        ring.setup_flags, ring.features
    );
    server::announce_api(NAME, "io_uring", Some(&details));
    let buffer_ring = BufRing::register(&ring, BUFFER_GROUP, BUFFER_COUNT, BUFFER_SIZE)
        .unwrap_or_else(|e| {
            if e == sys::EINVAL {
                die(
                    NAME,
                    "IORING_REGISTER_PBUF_RING not supported (provided buffer rings need Linux 5.19+)",
                )
            }
            die(
                NAME,
                &format!("registering the provided buffer ring: {}", sys::strerror(e)),
            )
        });
    let mut srv = Server {
        ring,
        buffer_ring,
        listener: s.listener,
        signal_fd: s.signal_fd,
        conns,
        accept_armed: false,
        accept_paused: false,
        signal_armed: false,
        timeout_armed: false,
        cancel_armed: false,
        stopping: false,
        accept_proven: false,
        recv_proven: false,
    };
    // Accepting before saying so: the listening line means the accept is in place.
    srv.arm_server_ops();
    let _ = srv.ring.submit();
    server::announce_listener(&s);

    loop {
        srv.arm_server_ops();
        // Stopped once the accept no longer holds the listener: closing it then frees
        // the port at once, not when the kernel tears the ring down later.
        if srv.stopping && (!srv.accept_armed || !srv.cancel_armed) {
            break;
        }
        // One enter per turn: it submits everything queued while draining the last
        // turn's completions and waits for at least one new completion.
        match srv.ring.submit_and_wait(1) {
            Ok(_) | Err(sys::EINTR) | Err(sys::EAGAIN) | Err(sys::EBUSY) => {}
            Err(e) => die(NAME, &format!("io_uring_enter: {}", sys::strerror(e))),
        }
        while let Some(cqe) = srv.ring.next_cqe() {
            srv.on_completion(&cqe);
        }
    }
    sys::close_fd(srv.listener);
    drop(srv);
}
