//! The epoll server: level-triggered, one recv per readable event, immediate writes,
//! EPOLLOUT only while a write is pending. See servers/README.md.

use orch_servers::http::{owed_slice, Framer, RESPONSE_LEN};
use orch_servers::server::{self, die, Zeroable};
use orch_servers::sys::{self, EpollEvent, EPOLLERR, EPOLLHUP, EPOLLIN, EPOLLOUT};
use std::os::unix::io::RawFd;
use std::time::{Duration, Instant};

const NAME: &str = "epoll";
const MAX_EVENTS: usize = 256;
const RECV_SIZE: usize = 4096;
const ACCEPT_RETRY: Duration = Duration::from_millis(server::ACCEPT_RETRY_MS);

#[derive(Clone, Copy, Default)]
struct Conn {
    framer: Framer,
    /// Response bytes not sent yet.
    owed: u64,
    /// A live connection: events for any other descriptor are stale.
    open: bool,
    /// A send stopped short: EPOLLOUT is on until owed is flushed.
    want_out: bool,
    /// The peer sent EOF: EPOLLIN is off, close once owed is flushed.
    eof: bool,
}

// Safety: integers, bools and a Framer of integers.
unsafe impl Zeroable for Conn {}

struct Server {
    epoll_fd: RawFd,
    listener: RawFd,
    signal_fd: RawFd,
    /// Indexed by descriptor.
    conns: Vec<Conn>,
    accept_paused: bool,
    /// When to retry accepting; meaningful while paused.
    accept_retry_at: Instant,
    recv_buffer: [u8; RECV_SIZE],
}

impl Server {
    fn pause_accepting(&mut self) {
        // Level triggering would report the pending connection forever otherwise.
        let _ = sys::epoll_control(self.epoll_fd, sys::EPOLL_CTL_DEL, self.listener, 0);
        self.accept_paused = true;
        self.accept_retry_at = Instant::now() + ACCEPT_RETRY;
    }

    fn resume_accepting(&mut self) {
        if !self.accept_paused {
            return;
        }
        match sys::epoll_control(self.epoll_fd, sys::EPOLL_CTL_ADD, self.listener, EPOLLIN) {
            Ok(()) | Err(sys::EEXIST) => self.accept_paused = false,
            Err(_) => self.accept_retry_at = Instant::now() + ACCEPT_RETRY,
        }
    }

    fn close_connection(&mut self, fd: RawFd) {
        // Closing the last reference also removes it from the epoll set.
        sys::close_fd(fd);
        self.conns[fd as usize] = Conn::default();
        self.resume_accepting();
    }

    /// Sets the connection's epoll interest from its state; false if it closed it.
    fn update_events(&mut self, fd: RawFd) -> bool {
        let c = self.conns[fd as usize];
        let events = if c.eof { 0 } else { EPOLLIN } | if c.want_out { EPOLLOUT } else { 0 };
        if sys::epoll_control(self.epoll_fd, sys::EPOLL_CTL_MOD, fd, events).is_ok() {
            return true;
        }
        self.close_connection(fd);
        false
    }

    fn open_connection(&mut self, fd: RawFd) {
        if fd as usize >= self.conns.len() {
            sys::close_fd(fd);
            return;
        }
        let _ = sys::set_nodelay(fd);
        if sys::epoll_control(self.epoll_fd, sys::EPOLL_CTL_ADD, fd, EPOLLIN).is_err() {
            sys::close_fd(fd);
            return;
        }
        self.conns[fd as usize] = Conn {
            open: true,
            ..Conn::default()
        };
    }

    fn accept_all(&mut self) {
        loop {
            match sys::accept(self.listener, sys::SOCK_NONBLOCK | sys::SOCK_CLOEXEC) {
                Ok(fd) => self.open_connection(fd),
                Err(sys::EAGAIN) => return,
                Err(e) if server::accept_error_retried(e) => {}
                Err(_) => {
                    self.pause_accepting();
                    return;
                }
            }
        }
    }

    /// Sends what is owed until it is all sent or the socket is full; false if it closed
    /// the connection.
    fn send_owed(&mut self, fd: RawFd) -> bool {
        let i = fd as usize;
        while self.conns[i].owed > 0 {
            match sys::send_from(fd, owed_slice(self.conns[i].owed), sys::MSG_NOSIGNAL) {
                Ok(sent) if sent > 0 => self.conns[i].owed -= sent as u64,
                Err(sys::EAGAIN) => {
                    if self.conns[i].want_out {
                        return true;
                    }
                    self.conns[i].want_out = true;
                    return self.update_events(fd);
                }
                Err(sys::EINTR) => {}
                _ => {
                    self.close_connection(fd);
                    return false;
                }
            }
        }
        if self.conns[i].eof {
            self.close_connection(fd);
            return false;
        }
        if self.conns[i].want_out {
            self.conns[i].want_out = false;
            return self.update_events(fd);
        }
        true
    }

    fn receive(&mut self, fd: RawFd) {
        let i = fd as usize;
        match sys::recv_into(fd, &mut self.recv_buffer) {
            Ok(0) => {
                if self.conns[i].owed == 0 {
                    self.close_connection(fd);
                    return;
                }
                self.conns[i].eof = true;
                self.update_events(fd);
            }
            Ok(received) => {
                let c = &mut self.conns[i];
                let requests = match c.framer.consume(&self.recv_buffer[..received]) {
                    Ok(requests) => requests,
                    Err(_) => {
                        self.close_connection(fd);
                        return;
                    }
                };
                c.owed += requests * RESPONSE_LEN;
                // While want_out, the socket is full: EPOLLOUT will flush the new answers too.
                if requests > 0 && !c.want_out {
                    self.send_owed(fd);
                }
            }
            Err(sys::EAGAIN) | Err(sys::EINTR) => {}
            Err(_) => self.close_connection(fd),
        }
    }

    /// Writes first, then reads: the owed bytes go out before more requests add to them.
    fn on_connection_event(&mut self, fd: RawFd, events: u32) {
        let c = match self.conns.get(fd as usize) {
            Some(c) if c.open => *c,
            _ => return,
        };
        // Errors and hang-ups are reported whatever the interest: the send or recv they
        // make fail closes the connection.
        if c.want_out && events & (EPOLLOUT | EPOLLERR | EPOLLHUP) != 0 && !self.send_owed(fd) {
            return;
        }
        if !self.conns[fd as usize].eof && events & (EPOLLIN | EPOLLERR | EPOLLHUP) != 0 {
            self.receive(fd);
        }
    }
}

fn main() {
    let s = server::start(NAME, true);
    let conns = server::alloc_conn_table(server::conn_table_size(s.fd_limit))
        .unwrap_or_else(|| die(NAME, "cannot allocate the connection table"));
    let epoll_fd = sys::epoll_new()
        .unwrap_or_else(|e| die(NAME, &format!("epoll_create1: {}", sys::strerror(e))));
    for fd in [s.signal_fd, s.listener] {
        sys::epoll_control(epoll_fd, sys::EPOLL_CTL_ADD, fd, EPOLLIN)
            .unwrap_or_else(|e| die(NAME, &format!("epoll_ctl: {}", sys::strerror(e))));
    }
    let mut srv = Server {
        epoll_fd,
        listener: s.listener,
        signal_fd: s.signal_fd,
        conns,
        accept_paused: false,
        accept_retry_at: Instant::now(),
        recv_buffer: [0; RECV_SIZE],
    };
    server::announce_api(NAME, "epoll", None);
    server::announce_listener(&s);

    let mut events = [EpollEvent::zeroed(); MAX_EVENTS];
    loop {
        // A timeout only while accepting is paused: the fast path never reads the clock.
        let timeout = if srv.accept_paused {
            let left = srv
                .accept_retry_at
                .saturating_duration_since(Instant::now());
            // Rounded up, so the wait never ends just short of the retry.
            ((left.as_nanos() + 999_999) / 1_000_000).min(i32::MAX as u128) as i32
        } else {
            -1
        };
        let ready = match sys::epoll_wait_for(srv.epoll_fd, &mut events, timeout) {
            Ok(ready) => ready,
            Err(sys::EINTR) => continue,
            Err(e) => die(NAME, &format!("epoll_wait: {}", sys::strerror(e))),
        };
        for event in &events[..ready] {
            let (fd, mask) = (event.data as RawFd, event.events);
            if fd == srv.signal_fd {
                std::process::exit(0);
            }
            if fd == srv.listener {
                if !srv.accept_paused {
                    srv.accept_all();
                }
            } else {
                srv.on_connection_event(fd, mask);
            }
        }
        if srv.accept_paused && Instant::now() >= srv.accept_retry_at {
            srv.resume_accepting();
        }
    }
}
