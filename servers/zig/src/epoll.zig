//! Level-triggered epoll server: the event loop only; framing is in http.zig and
//! startup in common.zig.

const std = @import("std");
const linux = std.os.linux;
const common = @import("common");
const http = @import("http");

const EPOLL = linux.EPOLL;

const Conn = struct {
    owed: u64 = 0,
    framer: http.Framer = .{},
    open: bool = false,
    /// EPOLLOUT is registered: a write hit EAGAIN and owed bytes remain.
    want_out: bool = false,
    /// The peer sent EOF: EPOLLIN is dropped and the connection closes once flushed.
    eof: bool = false,
};

const Server = struct {
    ep: i32,
    listen_fd: i32,
    sig_fd: i32,
    conns: []Conn,
    /// The listener is out of the epoll set after EMFILE/ENFILE until a connection closes.
    accept_paused: bool = false,
    recv_buf: [4096]u8 = undefined,

    fn ctl(s: *Server, op: u32, fd: i32, events: u32) linux.E {
        var ev = linux.epoll_event{ .events = events, .data = .{ .fd = fd } };
        return common.errno(linux.epoll_ctl(s.ep, op, fd, &ev));
    }

    fn closeConn(s: *Server, fd: i32) void {
        // close() also removes the descriptor from the epoll set.
        common.close(fd);
        s.conns[@intCast(fd)] = .{};
        if (s.accept_paused) {
            if (s.ctl(EPOLL.CTL_ADD, s.listen_fd, EPOLL.IN) == .SUCCESS) s.accept_paused = false;
        }
    }

    fn acceptAll(s: *Server) void {
        while (true) {
            const rc = linux.accept4(s.listen_fd, null, null, linux.SOCK.NONBLOCK | linux.SOCK.CLOEXEC);
            switch (common.errno(rc)) {
                .SUCCESS => {},
                .AGAIN => return,
                // Out of descriptors or kernel memory: level triggering would report the
                // pending connection forever, so stop watching the listener until one of
                // our connections closes and frees resources.
                .MFILE, .NFILE, .NOBUFS, .NOMEM => {
                    if (s.ctl(EPOLL.CTL_DEL, s.listen_fd, 0) == .SUCCESS) s.accept_paused = true;
                    return;
                },
                // That connection failed (or a firewall refused it), not the listener:
                // accept(2) says to retry, as for EAGAIN.
                .CONNABORTED, .INTR, .PROTO, .PERM, .NETDOWN, .NOPROTOOPT, .HOSTDOWN, .NONET, .HOSTUNREACH, .OPNOTSUPP, .NETUNREACH => continue,
                // Anything else: the next readiness report retries.
                else => return,
            }
            const fd: i32 = @intCast(rc);
            if (rc >= s.conns.len) {
                common.close(fd);
                continue;
            }
            common.setNodelay(fd);
            if (s.ctl(EPOLL.CTL_ADD, fd, EPOLL.IN) != .SUCCESS) {
                common.close(fd);
                continue;
            }
            s.conns[rc] = .{ .open = true };
        }
    }

    /// Sends owed bytes until done or EAGAIN. Returns false if the connection was closed.
    fn flush(s: *Server, fd: i32, c: *Conn) bool {
        while (c.owed > 0) {
            const out = http.owedSlice(c.owed);
            const rc = linux.sendto(fd, out.ptr, out.len, linux.MSG.NOSIGNAL, null, 0);
            switch (common.errno(rc)) {
                .SUCCESS => c.owed -= rc,
                .INTR => {},
                .AGAIN => {
                    if (!c.want_out) {
                        const ev: u32 = if (c.eof) EPOLL.OUT else EPOLL.IN | EPOLL.OUT;
                        if (s.ctl(EPOLL.CTL_MOD, fd, ev) != .SUCCESS) {
                            s.closeConn(fd);
                            return false;
                        }
                        c.want_out = true;
                    }
                    return true;
                },
                else => {
                    s.closeConn(fd);
                    return false;
                },
            }
        }
        if (c.eof) {
            s.closeConn(fd);
            return false;
        }
        if (c.want_out) {
            if (s.ctl(EPOLL.CTL_MOD, fd, EPOLL.IN) != .SUCCESS) {
                s.closeConn(fd);
                return false;
            }
            c.want_out = false;
        }
        return true;
    }

    fn readable(s: *Server, fd: i32, c: *Conn) void {
        const rc = linux.recvfrom(fd, &s.recv_buf, s.recv_buf.len, 0, null, null);
        switch (common.errno(rc)) {
            .SUCCESS => {},
            .AGAIN, .INTR => return,
            else => return s.closeConn(fd),
        }
        if (rc == 0) {
            if (c.owed == 0) return s.closeConn(fd);
            // Answers are still owed (so EPOLLOUT is registered): stop reading and
            // let the writable handler close after the last byte.
            c.eof = true;
            if (s.ctl(EPOLL.CTL_MOD, fd, EPOLL.OUT) != .SUCCESS) s.closeConn(fd);
            return;
        }
        const n = http.consume(&c.framer, s.recv_buf[0..rc]) catch return s.closeConn(fd);
        if (n == 0) return;
        c.owed += @as(u64, n) * http.response.len;
        // With EPOLLOUT registered the socket is known full: wait for the report.
        if (!c.want_out) _ = s.flush(fd, c);
    }

    fn run(s: *Server) noreturn {
        var events: [256]linux.epoll_event = undefined;
        while (true) {
            const rc = linux.epoll_wait(s.ep, &events, events.len, -1);
            switch (common.errno(rc)) {
                .SUCCESS => {},
                .INTR => continue,
                else => |e| common.fatal("epoll_wait failed: {s}", .{common.errName(e)}),
            }
            for (events[0..rc]) |ev| {
                const fd = ev.data.fd;
                if (fd == s.listen_fd) {
                    if (!s.accept_paused) s.acceptAll();
                    continue;
                }
                if (fd == s.sig_fd) linux.exit_group(0);

                const c = &s.conns[@intCast(fd)];
                if (!c.open) continue;
                if (c.want_out and ev.events & (EPOLL.OUT | EPOLL.ERR | EPOLL.HUP) != 0) {
                    if (!s.flush(fd, c)) continue;
                }
                if (!c.eof and ev.events & (EPOLL.IN | EPOLL.ERR | EPOLL.HUP) != 0) {
                    s.readable(fd, c);
                }
            }
        }
    }
};

pub fn main() noreturn {
    const cfg = common.parseArgs();
    const nofile = common.raiseNofile();
    const sig_fd = common.signalFd();
    const l = common.listen(cfg, true);

    const eprc = linux.epoll_create1(linux.EPOLL.CLOEXEC);
    if (common.errno(eprc) != .SUCCESS) common.fatal("epoll_create1 failed: {s}", .{common.errName(common.errno(eprc))});

    var s = Server{
        .ep = @intCast(eprc),
        .listen_fd = l.fd,
        .sig_fd = sig_fd,
        .conns = common.allocTable(Conn, common.tableSize(nofile)),
    };
    if (s.ctl(EPOLL.CTL_ADD, sig_fd, EPOLL.IN) != .SUCCESS) common.fatal("epoll_ctl(signalfd) failed", .{});
    if (s.ctl(EPOLL.CTL_ADD, l.fd, EPOLL.IN) != .SUCCESS) common.fatal("epoll_ctl(listener) failed", .{});

    common.announce(l);
    s.run();
}
