//! Level-triggered epoll server: the event loop only; framing is in http.zig and
//! startup in common.zig.

const std = @import("std");
const linux = std.os.linux;
const common = @import("common");
const http = @import("http");

const EPOLL = linux.EPOLL;

const recv_size = 4096;
const max_events = 256;

const Conn = struct {
    framer: http.Framer = .{},
    /// Response bytes not sent yet.
    owed: u64 = 0,
    /// A live connection: events for any other descriptor are stale.
    open: bool = false,
    /// A send stopped short: EPOLLOUT is on until owed is flushed.
    want_out: bool = false,
    /// The peer sent EOF: EPOLLIN is off, close once owed is flushed.
    eof: bool = false,
};

fn nowMs() i64 {
    var ts: linux.timespec = undefined;
    _ = linux.clock_gettime(.MONOTONIC, &ts);
    return @as(i64, ts.sec) * 1000 + @divTrunc(@as(i64, ts.nsec), 1_000_000);
}

const Server = struct {
    epoll_fd: i32,
    listener: i32,
    signal_fd: i32,
    /// Indexed by descriptor.
    conns: []Conn,
    accept_paused: bool = false,
    /// CLOCK_MONOTONIC ms; meaningful while paused.
    accept_retry_at: i64 = 0,
    recv_buffer: [recv_size]u8 = undefined,

    fn ctl(s: *Server, op: u32, fd: i32, events: u32) linux.E {
        var ev = linux.epoll_event{ .events = events, .data = .{ .fd = fd } };
        return common.errno(linux.epoll_ctl(s.epoll_fd, op, fd, &ev));
    }

    fn pauseAccepting(s: *Server) void {
        // Level triggering would report the pending connection forever otherwise.
        _ = s.ctl(EPOLL.CTL_DEL, s.listener, 0);
        s.accept_paused = true;
        s.accept_retry_at = nowMs() + common.accept_retry_ms;
    }

    fn resumeAccepting(s: *Server) void {
        if (!s.accept_paused) return;
        switch (s.ctl(EPOLL.CTL_ADD, s.listener, EPOLL.IN)) {
            .SUCCESS, .EXIST => s.accept_paused = false,
            else => s.accept_retry_at = nowMs() + common.accept_retry_ms,
        }
    }

    fn closeConnection(s: *Server, fd: i32) void {
        // Closing the last reference also removes it from the epoll set.
        common.close(fd);
        s.conns[@intCast(fd)] = .{};
        s.resumeAccepting();
    }

    /// Sets the connection's epoll interest from its state; false if it closed it.
    fn updateEvents(s: *Server, fd: i32) bool {
        const c = &s.conns[@intCast(fd)];
        const events: u32 = (if (c.eof) @as(u32, 0) else EPOLL.IN) | (if (c.want_out) EPOLL.OUT else @as(u32, 0));
        if (s.ctl(EPOLL.CTL_MOD, fd, events) == .SUCCESS) return true;
        s.closeConnection(fd);
        return false;
    }

    fn openConnection(s: *Server, fd: i32) void {
        if (fd >= s.conns.len) {
            common.close(fd);
            return;
        }
        common.setNodelay(fd);
        if (s.ctl(EPOLL.CTL_ADD, fd, EPOLL.IN) != .SUCCESS) {
            common.close(fd);
            return;
        }
        s.conns[@intCast(fd)] = .{ .open = true };
    }

    fn acceptAll(s: *Server) void {
        while (true) {
            const rc = linux.accept4(s.listener, null, null, linux.SOCK.NONBLOCK | linux.SOCK.CLOEXEC);
            switch (common.errno(rc)) {
                .SUCCESS => s.openConnection(@intCast(rc)),
                .AGAIN => return,
                else => |e| if (!common.acceptErrorRetried(e)) {
                    s.pauseAccepting();
                    return;
                },
            }
        }
    }

    /// Sends what is owed until it is all sent or the socket is full; false if it closed
    /// the connection.
    fn sendOwed(s: *Server, fd: i32) bool {
        const c = &s.conns[@intCast(fd)];
        while (c.owed > 0) {
            const out = http.owedSlice(c.owed);
            const rc = linux.sendto(fd, out.ptr, out.len, linux.MSG.NOSIGNAL, null, 0);
            switch (common.errno(rc)) {
                .SUCCESS => if (rc > 0) {
                    c.owed -= rc;
                } else {
                    s.closeConnection(fd);
                    return false;
                },
                .AGAIN => {
                    if (c.want_out) return true;
                    c.want_out = true;
                    return s.updateEvents(fd);
                },
                .INTR => {},
                else => {
                    s.closeConnection(fd);
                    return false;
                },
            }
        }
        if (c.eof) {
            s.closeConnection(fd);
            return false;
        }
        if (c.want_out) {
            c.want_out = false;
            return s.updateEvents(fd);
        }
        return true;
    }

    fn receive(s: *Server, fd: i32) void {
        const c = &s.conns[@intCast(fd)];
        const rc = linux.recvfrom(fd, &s.recv_buffer, s.recv_buffer.len, 0, null, null);
        switch (common.errno(rc)) {
            .SUCCESS => {},
            .AGAIN, .INTR => return,
            else => return s.closeConnection(fd),
        }
        if (rc == 0) {
            if (c.owed == 0) return s.closeConnection(fd);
            c.eof = true;
            _ = s.updateEvents(fd);
            return;
        }
        const requests = http.consume(&c.framer, s.recv_buffer[0..rc]) catch return s.closeConnection(fd);
        c.owed += @as(u64, requests) * http.response.len;
        // While want_out, the socket is full: EPOLLOUT will flush the new answers too.
        if (requests > 0 and !c.want_out) _ = s.sendOwed(fd);
    }

    /// Writes first, then reads: the owed bytes go out before more requests add to them.
    fn onConnectionEvent(s: *Server, fd: i32, events: u32) void {
        const c = &s.conns[@intCast(fd)];
        if (!c.open) return;
        // Errors and hang-ups are reported whatever the interest: the send or recv they
        // make fail closes the connection.
        if (c.want_out and events & (EPOLL.OUT | EPOLL.ERR | EPOLL.HUP) != 0 and !s.sendOwed(fd)) return;
        if (!c.eof and events & (EPOLL.IN | EPOLL.ERR | EPOLL.HUP) != 0) s.receive(fd);
    }

    fn run(s: *Server) noreturn {
        var events: [max_events]linux.epoll_event = undefined;
        while (true) {
            // A timeout only while accepting is paused: the fast path never reads the clock.
            var timeout: i32 = -1;
            if (s.accept_paused) timeout = @intCast(std.math.clamp(s.accept_retry_at - nowMs(), 0, std.math.maxInt(i32)));
            const rc = linux.epoll_wait(s.epoll_fd, &events, events.len, timeout);
            switch (common.errno(rc)) {
                .SUCCESS => {},
                .INTR => continue,
                else => |e| common.fatal("epoll_wait failed: {s}", .{common.errName(e)}),
            }
            for (events[0..rc]) |ev| {
                const fd = ev.data.fd;
                if (fd == s.signal_fd) linux.exit_group(0);
                if (fd == s.listener) {
                    if (!s.accept_paused) s.acceptAll();
                } else {
                    s.onConnectionEvent(fd, ev.events);
                }
            }
            if (s.accept_paused and nowMs() >= s.accept_retry_at) s.resumeAccepting();
        }
    }
};

pub fn main() noreturn {
    const cfg = common.parseArgs();
    const fd_limit = common.raiseNofile();
    const signal_fd = common.signalFd();
    const l = common.listen(cfg, true);

    const eprc = linux.epoll_create1(linux.EPOLL.CLOEXEC);
    if (common.errno(eprc) != .SUCCESS) common.fatal("epoll_create1 failed: {s}", .{common.errName(common.errno(eprc))});

    var s = Server{
        .epoll_fd = @intCast(eprc),
        .listener = l.fd,
        .signal_fd = signal_fd,
        .conns = common.allocConnTable(Conn, common.connTableSize(fd_limit)),
    };
    if (s.ctl(EPOLL.CTL_ADD, signal_fd, EPOLL.IN) != .SUCCESS) common.fatal("epoll_ctl(signalfd) failed", .{});
    if (s.ctl(EPOLL.CTL_ADD, l.fd, EPOLL.IN) != .SUCCESS) common.fatal("epoll_ctl(listener) failed", .{});

    common.announceApi("epoll", null);
    common.announceListener(l);
    s.run();
}
