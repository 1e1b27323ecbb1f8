//! The io_uring server: multishot accept, multishot recv from a provided buffer ring, at
//! most one send in flight per connection, one io_uring_enter per loop turn. See
//! servers/README.md.

use orch_servers::http::{owed_slice, Framer, RESPONSE_LEN};
use orch_servers::server::{self, die};
use orch_servers::sys;
use orch_servers::uring::{BufRing, Cqe, Ring, Sqe};
use std::os::unix::io::RawFd;

const NAME: &str = "io_uring";
const SQ_ENTRIES: u32 = 4096;
const CQ_ENTRIES: u32 = 4 * SQ_ENTRIES;
const BUF_GROUP: u16 = 0;
const BUF_COUNT: u16 = 4096;
const BUF_SIZE: u32 = 4096;

// user_data: the operation in the high 32 bits, its descriptor in the low 32.
const OP_ACCEPT: u64 = 1;
const OP_RECV: u64 = 2;
const OP_SEND: u64 = 3;
const OP_SIGNAL: u64 = 4;

fn user_data(op: u64, fd: RawFd) -> u64 {
    op << 32 | fd as u32 as u64
}

#[derive(Clone, Copy, Default)]
struct Conn {
    open: bool,
    /// A multishot recv is armed (its last CQE had IORING_CQE_F_MORE).
    recv_armed: bool,
    /// A send is in flight.
    sending: bool,
    /// The client sent EOF: close once nothing is owed.
    eof: bool,
    /// Shut down; closed as soon as no operation is in flight.
    closing: bool,
    framer: Framer,
    owed: u64,
}

struct Server {
    ring: Ring,
    bufs: BufRing,
    listener: RawFd,
    signals: RawFd,
    accept_armed: bool,
    /// Descriptors ran out: accept again once a connection closes.
    accept_paused: bool,
    /// Some multishot recv has delivered data, so EINVAL from one is not the kernel
    /// lacking the feature.
    recv_worked: bool,
    /// Indexed by descriptor.
    conns: Vec<Conn>,
}

impl Server {
    fn push(&mut self, sqe: Sqe) {
        if let Err(e) = self.ring.push(sqe) {
            die(NAME, &format!("io_uring_enter: {}", sys::strerror(e)));
        }
    }

    fn arm_accept(&mut self) {
        let ud = user_data(OP_ACCEPT, self.listener);
        self.push(Sqe::accept_multishot(self.listener, sys::SOCK_CLOEXEC, ud));
        self.accept_armed = true;
    }

    fn arm_signals(&mut self) {
        self.push(Sqe::poll_add(
            self.signals,
            sys::POLLIN,
            user_data(OP_SIGNAL, self.signals),
        ));
    }

    fn arm_recv(&mut self, fd: RawFd) {
        self.push(Sqe::recv_multishot(fd, BUF_GROUP, user_data(OP_RECV, fd)));
        self.conns[fd as usize].recv_armed = true;
    }

    fn send_owed(&mut self, fd: RawFd) {
        let data = owed_slice(self.conns[fd as usize].owed);
        self.push(Sqe::send(
            fd,
            data,
            sys::MSG_NOSIGNAL,
            user_data(OP_SEND, fd),
        ));
        self.conns[fd as usize].sending = true;
    }

    fn dispatch(&mut self, cqe: Cqe) {
        let fd = cqe.user_data as u32 as RawFd;
        let op = cqe.user_data >> 32;
        if (op == OP_RECV || op == OP_SEND)
            && !self.conns.get(fd as usize).map_or(false, |c| c.open)
        {
            // Cannot happen (a descriptor is closed only when nothing is in flight on
            // it), but a buffer must never be lost.
            if let Some(bid) = cqe.buffer_id() {
                self.bufs.give_back(bid);
            }
            return;
        }
        match op {
            OP_RECV => self.on_recv(fd, &cqe),
            OP_SEND => self.on_send(fd, &cqe),
            OP_ACCEPT => self.on_accept(&cqe),
            OP_SIGNAL if cqe.res > 0 => std::process::exit(0),
            OP_SIGNAL => self.arm_signals(),
            _ => {}
        }
    }

    fn on_accept(&mut self, cqe: &Cqe) {
        if !cqe.more() {
            self.accept_armed = false;
        }
        if cqe.res >= 0 {
            let fd = cqe.res;
            let _ = sys::set_nodelay(fd);
            let i = fd as usize;
            if i >= self.conns.len() {
                let len = (i + 1).max(self.conns.len() * 2);
                self.conns.resize(len, Conn::default());
            }
            self.conns[i] = Conn {
                open: true,
                ..Conn::default()
            };
            self.arm_recv(fd);
        } else {
            match -cqe.res {
                sys::EMFILE | sys::ENFILE | sys::ENOBUFS | sys::ENOMEM => self.accept_paused = true,
                sys::EINVAL => die(NAME, "multishot accept not supported (needs Linux 5.19+)"),
                // Aborted connections and the like: just accept the next one.
                _ => {}
            }
        }
        if !self.accept_armed && !self.accept_paused {
            self.arm_accept();
        }
    }

    fn on_recv(&mut self, fd: RawFd, cqe: &Cqe) {
        let i = fd as usize;
        if !cqe.more() {
            self.conns[i].recv_armed = false;
        }
        if let Some(bid) = cqe.buffer_id() {
            let len = cqe.res.max(0) as usize;
            let c = &mut self.conns[i];
            let framed = if c.closing {
                Ok(0)
            } else {
                c.framer.consume(self.bufs.get(bid, len))
            };
            self.bufs.give_back(bid);
            match framed {
                Ok(requests) => c.owed += requests * RESPONSE_LEN,
                Err(_) => self.start_close(fd),
            }
            self.recv_worked = true;
        } else if cqe.res == 0 {
            self.conns[i].eof = true;
        } else if cqe.res < 0 {
            match -cqe.res {
                // Every provided buffer was in use: re-armed below.
                sys::ENOBUFS => {}
                sys::EINVAL if !self.recv_worked => die(
                    NAME,
                    "multishot recv with provided buffers not supported (needs Linux 6.0+)",
                ),
                _ => self.start_close(fd),
            }
        }
        self.progress(fd);
    }

    fn on_send(&mut self, fd: RawFd, cqe: &Cqe) {
        let c = &mut self.conns[fd as usize];
        c.sending = false;
        if cqe.res > 0 {
            c.owed -= (cqe.res as u64).min(c.owed);
        } else {
            self.start_close(fd);
        }
        self.progress(fd);
    }

    /// After any completion on a connection: send what is owed if no send is in flight,
    /// keep a recv armed until EOF, close when done.
    fn progress(&mut self, fd: RawFd) {
        let c = self.conns[fd as usize];
        if !c.open {
            // Closed by the completion just handled.
            return;
        }
        if c.closing {
            return self.finish_close(fd);
        }
        if !c.sending {
            if c.owed > 0 {
                self.send_owed(fd);
            } else if c.eof {
                return self.start_close(fd);
            }
        }
        if !c.eof && !c.recv_armed {
            self.arm_recv(fd);
        }
    }

    /// Shutdown ends the multishot recv and any pending send; the descriptor is closed
    /// once their completions are in, so none can refer to a reused descriptor.
    fn start_close(&mut self, fd: RawFd) {
        let c = &mut self.conns[fd as usize];
        if c.closing {
            return;
        }
        c.closing = true;
        let _ = sys::shutdown_fd(fd, sys::SHUT_RDWR);
        self.finish_close(fd);
    }

    fn finish_close(&mut self, fd: RawFd) {
        let c = &mut self.conns[fd as usize];
        if !c.open || !c.closing || c.recv_armed || c.sending {
            return;
        }
        sys::close_fd(fd);
        *c = Conn::default();
        if self.accept_paused {
            self.accept_paused = false;
            if !self.accept_armed {
                self.arm_accept();
            }
        }
    }
}

fn main() {
    let s = server::start(NAME, false);
    let ring = Ring::for_server(SQ_ENTRIES, CQ_ENTRIES).unwrap_or_else(|m| die(NAME, &m));
    let bufs = BufRing::register(&ring, BUF_GROUP, BUF_COUNT, BUF_SIZE).unwrap_or_else(|e| {
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
        bufs,
        listener: s.listener,
        signals: s.signals,
        accept_armed: false,
        accept_paused: false,
        recv_worked: false,
        conns: vec![Conn::default(); 1024],
    };
    srv.arm_accept();
    srv.arm_signals();
    server::announce(&s);

    loop {
        match srv.ring.submit_and_wait(1) {
            Ok(_) | Err(sys::EINTR) | Err(sys::EAGAIN) | Err(sys::EBUSY) => {}
            Err(e) => die(NAME, &format!("io_uring_enter: {}", sys::strerror(e))),
        }
        while let Some(cqe) = srv.ring.next_cqe() {
            srv.dispatch(cqe);
        }
    }
}
