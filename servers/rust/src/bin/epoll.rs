//! The epoll server: level-triggered, one recv per readable event, immediate writes,
//! EPOLLOUT only while a write is pending. See servers/README.md.

use orch_servers::http::{owed_slice, Framer, RESPONSE_LEN};
use orch_servers::server::{self, die};
use orch_servers::sys::{self, EpollEvent, EPOLLERR, EPOLLHUP, EPOLLIN, EPOLLOUT};
use std::os::unix::io::RawFd;

const NAME: &str = "epoll";
const MAX_EVENTS: usize = 256;
const RECV_SIZE: usize = 4096;

#[derive(Clone, Copy, Default)]
struct Conn {
    open: bool,
    /// The client sent EOF: read no more, close once nothing is owed.
    eof: bool,
    /// The events currently registered with epoll for this connection.
    interest: u32,
    framer: Framer,
    owed: u64,
}

struct Server {
    epoll: RawFd,
    listener: RawFd,
    signals: RawFd,
    /// The listener is out of the epoll set because descriptors ran out.
    accept_paused: bool,
    /// Indexed by descriptor.
    conns: Vec<Conn>,
    buf: [u8; RECV_SIZE],
}

impl Server {
    fn accept_all(&mut self) {
        loop {
            match sys::accept(self.listener, sys::SOCK_NONBLOCK | sys::SOCK_CLOEXEC) {
                Ok(fd) => self.add_conn(fd),
                Err(sys::EAGAIN) => return,
                Err(sys::EMFILE) | Err(sys::ENFILE) | Err(sys::ENOBUFS) | Err(sys::ENOMEM) => {
                    // Out of descriptors or kernel memory: level triggering would report
                    // the waiting connection forever; listen again once one of our
                    // connections closes and frees resources.
                    if sys::epoll_control(self.epoll, sys::EPOLL_CTL_DEL, self.listener, 0).is_ok()
                    {
                        self.accept_paused = true;
                    }
                    return;
                }
                // The connection died in the queue, or we were interrupted: next one.
                Err(sys::EINTR) | Err(sys::ECONNABORTED) | Err(sys::EPROTO) => {}
                // Anything else: try again on the next event.
                Err(_) => return,
            }
        }
    }

    fn add_conn(&mut self, fd: RawFd) {
        let _ = sys::set_nodelay(fd);
        if sys::epoll_control(self.epoll, sys::EPOLL_CTL_ADD, fd, EPOLLIN).is_err() {
            sys::close_fd(fd);
            return;
        }
        let i = fd as usize;
        if i >= self.conns.len() {
            let len = (i + 1).max(self.conns.len() * 2);
            self.conns.resize(len, Conn::default());
        }
        self.conns[i] = Conn {
            open: true,
            interest: EPOLLIN,
            ..Conn::default()
        };
    }

    fn close_conn(&mut self, fd: RawFd) {
        // Closing the last reference also removes it from the epoll set.
        sys::close_fd(fd);
        self.conns[fd as usize].open = false;
        if self.accept_paused
            && sys::epoll_control(self.epoll, sys::EPOLL_CTL_ADD, self.listener, EPOLLIN).is_ok()
        {
            self.accept_paused = false;
        }
    }

    fn conn_event(&mut self, fd: RawFd, events: u32) {
        let c = match self.conns.get(fd as usize) {
            Some(c) if c.open => *c,
            _ => return,
        };
        let mut owed = c.owed;
        if !c.eof && events & (EPOLLIN | EPOLLHUP | EPOLLERR) != 0 {
            match sys::recv_into(fd, &mut self.buf) {
                Ok(0) => {
                    if owed == 0 {
                        return self.close_conn(fd);
                    }
                    self.conns[fd as usize].eof = true;
                }
                Ok(n) => {
                    let c = &mut self.conns[fd as usize];
                    match c.framer.consume(&self.buf[..n]) {
                        Ok(requests) => c.owed += requests * RESPONSE_LEN,
                        Err(_) => return self.close_conn(fd),
                    }
                }
                Err(sys::EAGAIN) | Err(sys::EINTR) => {}
                Err(_) => return self.close_conn(fd),
            }
            owed = self.conns[fd as usize].owed;
        }
        // Write new answers at once; answers already waiting for EPOLLOUT only when it
        // (or an error, which the send will report) arrives.
        let waiting = c.interest & EPOLLOUT != 0;
        if owed > 0 && (!waiting || events & (EPOLLOUT | EPOLLHUP | EPOLLERR) != 0) {
            self.flush(fd);
        } else {
            self.update_interest(fd);
        }
    }

    /// Sends what is owed until done or the socket is full, then adjusts the interest.
    fn flush(&mut self, fd: RawFd) {
        let c = &mut self.conns[fd as usize];
        while c.owed > 0 {
            match sys::send_from(fd, owed_slice(c.owed), sys::MSG_NOSIGNAL) {
                Ok(n) => c.owed -= n as u64,
                Err(sys::EAGAIN) => break,
                Err(sys::EINTR) => {}
                Err(_) => return self.close_conn(fd),
            }
        }
        if c.owed == 0 && c.eof {
            return self.close_conn(fd);
        }
        self.update_interest(fd);
    }

    fn update_interest(&mut self, fd: RawFd) {
        let c = &mut self.conns[fd as usize];
        let want = if c.eof { 0 } else { EPOLLIN } | if c.owed > 0 { EPOLLOUT } else { 0 };
        if want == c.interest {
            return;
        }
        if sys::epoll_control(self.epoll, sys::EPOLL_CTL_MOD, fd, want).is_err() {
            return self.close_conn(fd);
        }
        c.interest = want;
    }
}

fn main() {
    let s = server::start(NAME, true);
    let epoll = sys::epoll_new()
        .unwrap_or_else(|e| die(NAME, &format!("epoll_create1: {}", sys::strerror(e))));
    for fd in [s.listener, s.signals] {
        sys::epoll_control(epoll, sys::EPOLL_CTL_ADD, fd, EPOLLIN)
            .unwrap_or_else(|e| die(NAME, &format!("epoll_ctl: {}", sys::strerror(e))));
    }
    let mut srv = Server {
        epoll,
        listener: s.listener,
        signals: s.signals,
        accept_paused: false,
        conns: vec![Conn::default(); 1024],
        buf: [0; RECV_SIZE],
    };
    server::announce(&s);

    let mut events = [EpollEvent::zeroed(); MAX_EVENTS];
    loop {
        let n = match sys::epoll_wait_all(srv.epoll, &mut events) {
            Ok(n) => n,
            Err(sys::EINTR) => continue,
            Err(e) => die(NAME, &format!("epoll_wait: {}", sys::strerror(e))),
        };
        for ev in &events[..n] {
            let (fd, mask) = (ev.data as RawFd, ev.events);
            if fd == srv.listener {
                srv.accept_all();
            } else if fd == srv.signals {
                std::process::exit(0);
            } else {
                srv.conn_event(fd, mask);
            }
        }
    }
}
