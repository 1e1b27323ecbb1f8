//! io_uring server: the event loop only; framing is in http.zig and startup in
//! common.zig. std.os.linux.IoUring maps the rings; submission and completion
//! handling are done here so that each loop turn is exactly one io_uring_enter.

const std = @import("std");
const linux = std.os.linux;
const IoUring = linux.IoUring;
const common = @import("common");
const http = @import("http");

const sq_entries = 4096;
const cq_entries = 4 * sq_entries;
const buffer_count = 4096;
const buffer_size = 4096;
const buffer_group = 0;

/// A completion's user_data is the operation in the high 32 bits and its descriptor in
/// the low 32 bits.
const Op = enum(u8) { accept = 1, recv, send, signal, timeout, cancel };

fn opData(op: Op, fd: i32) u64 {
    return @as(u64, @intFromEnum(op)) << 32 | @as(u32, @bitCast(fd));
}

const accept_retry = linux.kernel_timespec{ .sec = 0, .nsec = common.accept_retry_ms * 1_000_000 };

const Conn = struct {
    framer: http.Framer = .{},
    /// Response bytes not confirmed sent, including those in flight.
    owed: u64 = 0,
    /// The multishot recv is armed.
    recv_armed: bool = false,
    /// A send is in flight.
    sending: bool = false,
    /// The peer sent EOF: close once owed is flushed.
    eof: bool = false,
    /// Shut down: close once no operation is in flight.
    closing: bool = false,
};

const Server = struct {
    ring: IoUring,
    buffer_ring: [*]linux.io_uring_buf,
    buffers: [*]u8,
    buffer_tail: u16 = 0,
    listener: i32,
    signal_fd: i32,
    /// Indexed by descriptor.
    conns: []Conn,
    accept_armed: bool = false,
    accept_paused: bool = false,
    signal_armed: bool = false,
    timeout_armed: bool = false,
    cancel_armed: bool = false,
    stopping: bool = false,
    /// An EINVAL before the first success means the kernel lacks the multishot flag.
    accept_proven: bool = false,
    recv_proven: bool = false,

    /// An SQE, or null if the SQ is still full after submitting it (the kernel took none,
    /// which it only does when short of memory).
    fn getSqe(s: *Server) ?*linux.io_uring_sqe {
        return s.ring.get_sqe() catch {
            _ = linux.io_uring_enter(s.ring.fd, s.ring.flush_sq(), 0, 0, null);
            return s.ring.get_sqe() catch null;
        };
    }

    fn armAccept(s: *Server) void {
        const sqe = s.getSqe() orelse return;
        sqe.prep_multishot_accept(s.listener, null, null, linux.SOCK.CLOEXEC);
        sqe.user_data = opData(.accept, s.listener);
        s.accept_armed = true;
    }

    fn armSignal(s: *Server) void {
        const sqe = s.getSqe() orelse return;
        sqe.prep_poll_add(s.signal_fd, linux.POLL.IN);
        sqe.user_data = opData(.signal, s.signal_fd);
        s.signal_armed = true;
    }

    fn armTimeout(s: *Server) void {
        const sqe = s.getSqe() orelse return;
        sqe.prep_timeout(&accept_retry, 0, 0);
        sqe.user_data = opData(.timeout, -1);
        s.timeout_armed = true;
    }

    fn armCancel(s: *Server) void {
        const sqe = s.getSqe() orelse return;
        sqe.prep_cancel(opData(.accept, s.listener), 0);
        sqe.user_data = opData(.cancel, s.listener);
        s.cancel_armed = true;
    }

    /// Queues whichever of the server's own operations should be in flight and is not,
    /// once per loop turn: one that could not be queued (SQ full) is retried next turn.
    fn armServerOps(s: *Server) void {
        if (s.stopping) {
            if (s.accept_armed and !s.cancel_armed) s.armCancel();
            return;
        }
        if (!s.signal_armed) s.armSignal();
        if (s.accept_paused and !s.timeout_armed) s.armTimeout();
        if (!s.accept_paused and !s.accept_armed) s.armAccept();
    }

    fn pauseAccepting(s: *Server) void {
        s.accept_paused = true;
    }

    fn resumeAccepting(s: *Server) void {
        s.accept_paused = false;
    }

    fn returnBuffer(s: *Server, bid: u16) void {
        // Field by field: entry 0's last field is the ring tail itself.
        const e = &s.buffer_ring[s.buffer_tail & (buffer_count - 1)];
        e.addr = @intFromPtr(s.buffers + @as(usize, bid) * buffer_size);
        e.len = buffer_size;
        e.bid = bid;
        s.buffer_tail +%= 1;
        @atomicStore(u16, &s.buffer_ring[0].resv, s.buffer_tail, .release);
    }

    /// Closes the descriptor of a closing connection once nothing in flight can still
    /// complete for it, so no completion ever names a reused descriptor.
    fn releaseIfIdle(s: *Server, fd: i32) void {
        const c = &s.conns[@intCast(fd)];
        if (c.recv_armed or c.sending) return;
        common.close(fd);
        c.* = .{};
        s.resumeAccepting();
    }

    fn closeConnection(s: *Server, fd: i32) void {
        const c = &s.conns[@intCast(fd)];
        if (!c.closing) {
            c.closing = true;
            // Ends the multishot recv and any send waiting for room, promptly.
            _ = linux.shutdown(fd, linux.SHUT.RDWR);
        }
        s.releaseIfIdle(fd);
    }

    fn armRecv(s: *Server, fd: i32) void {
        const sqe = s.getSqe() orelse return s.closeConnection(fd);
        sqe.prep_rw(.RECV, fd, 0, 0, 0);
        sqe.flags = linux.IOSQE_BUFFER_SELECT;
        sqe.ioprio = linux.IORING_RECV_MULTISHOT;
        sqe.buf_index = buffer_group;
        sqe.user_data = opData(.recv, fd);
        s.conns[@intCast(fd)].recv_armed = true;
    }

    /// Starts a send of what is owed unless one is in flight: its completion sends the
    /// rest, answers owed meanwhile included.
    fn sendOwed(s: *Server, fd: i32) void {
        const c = &s.conns[@intCast(fd)];
        if (c.sending or c.owed == 0) return;
        const sqe = s.getSqe() orelse return s.closeConnection(fd);
        sqe.prep_send(fd, http.owedSlice(c.owed), linux.MSG.NOSIGNAL);
        sqe.user_data = opData(.send, fd);
        c.sending = true;
    }

    fn openConnection(s: *Server, fd: i32) void {
        if (fd >= s.conns.len) return common.close(fd);
        common.setNodelay(fd);
        s.conns[@intCast(fd)] = .{};
        s.armRecv(fd);
    }

    fn onAccept(s: *Server, cqe: linux.io_uring_cqe) void {
        if (cqe.flags & linux.IORING_CQE_F_MORE == 0) s.accept_armed = false;
        if (cqe.res >= 0) {
            s.accept_proven = true;
            s.openConnection(cqe.res);
        } else if (cqe.err() == .INVAL and !s.accept_proven) {
            common.fatal("io_uring: multishot accept not supported (needs Linux 5.19+)", .{});
        } else if (!s.accept_armed and !common.acceptErrorRetried(cqe.err())) {
            s.pauseAccepting();
        }
    }

    fn onRecv(s: *Server, fd: i32, cqe: linux.io_uring_cqe) void {
        const c = &s.conns[@intCast(fd)];
        var too_long = false;
        var requests: usize = 0;

        if (cqe.flags & linux.IORING_CQE_F_MORE == 0) c.recv_armed = false;
        if (cqe.flags & linux.IORING_CQE_F_BUFFER != 0) {
            const bid: u16 = @intCast(cqe.flags >> linux.IORING_CQE_BUFFER_SHIFT);
            if (cqe.res > 0 and !c.closing) {
                const data = s.buffers[@as(usize, bid) * buffer_size ..][0..@intCast(cqe.res)];
                requests = http.consume(&c.framer, data) catch blk: {
                    too_long = true;
                    break :blk 0;
                };
            }
            s.returnBuffer(bid);
        }
        if (cqe.err() == .INVAL and !s.recv_proven)
            common.fatal("io_uring: multishot recv not supported (needs Linux 6.0+)", .{});
        s.recv_proven = true;

        if (c.closing) {
            s.releaseIfIdle(fd);
        } else if (too_long or (cqe.res < 0 and cqe.err() != .NOBUFS)) {
            s.closeConnection(fd);
        } else if (cqe.res == 0) {
            c.eof = true;
            // A send in flight still owes answers: its completion closes.
            if (!c.sending) s.closeConnection(fd);
        } else {
            c.owed += @as(u64, requests) * http.response.len;
            // Ended without EOF (ENOBUFS, or the CQ overflowed): the connection lives on.
            if (!c.recv_armed) s.armRecv(fd);
            s.sendOwed(fd);
        }
    }

    fn onSend(s: *Server, fd: i32, cqe: linux.io_uring_cqe) void {
        const c = &s.conns[@intCast(fd)];

        c.sending = false;
        if (c.closing) {
            s.releaseIfIdle(fd);
        } else if (cqe.res <= 0) {
            s.closeConnection(fd);
        } else {
            c.owed -= @intCast(cqe.res);
            if (c.owed > 0) {
                s.sendOwed(fd);
            } else if (c.eof) {
                s.closeConnection(fd);
            }
        }
    }

    fn onSignal(s: *Server, cqe: linux.io_uring_cqe) void {
        s.signal_armed = false;
        // A failed poll is re-armed by the next turn; a signal stops the server.
        if (cqe.res >= 0) s.stopping = true;
    }

    fn onTimeout(s: *Server) void {
        s.timeout_armed = false;
        s.resumeAccepting();
    }

    fn onCancel(s: *Server, cqe: linux.io_uring_cqe) void {
        // Found, the accept ends with its own completion; not found, it already has.
        if (cqe.res < 0) s.accept_armed = false;
    }

    fn onCompletion(s: *Server, cqe: linux.io_uring_cqe) void {
        const fd: i32 = @bitCast(@as(u32, @truncate(cqe.user_data)));

        switch (@as(Op, @enumFromInt(@as(u8, @truncate(cqe.user_data >> 32))))) {
            .accept => s.onAccept(cqe),
            .recv => s.onRecv(fd, cqe),
            .send => s.onSend(fd, cqe),
            .signal => s.onSignal(cqe),
            .timeout => s.onTimeout(),
            .cancel => s.onCancel(cqe),
        }
    }

    fn run(s: *Server) void {
        const cq = &s.ring.cq;
        while (true) {
            s.armServerOps();
            // Stopped once the accept no longer holds the listener: closing it then frees
            // the port at once, not when the kernel tears the ring down later.
            if (s.stopping and (!s.accept_armed or !s.cancel_armed)) return;
            // One enter per turn: it submits everything queued while draining the last
            // turn's completions and waits for at least one new completion.
            const rc = linux.io_uring_enter(s.ring.fd, s.ring.flush_sq(), 1, linux.IORING_ENTER_GETEVENTS, null);
            switch (common.errno(rc)) {
                .SUCCESS, .INTR, .AGAIN, .BUSY => {},
                else => |e| common.fatal("io_uring_enter failed: {s}", .{common.errName(e)}),
            }
            // Handling a completion may submit early (full SQ) and so post more
            // completions; the tail is re-read until the queue is empty.
            while (true) {
                var head = cq.head.*;
                const tail = @atomicLoad(u32, cq.tail, .acquire);
                if (head == tail) break;
                while (head != tail) {
                    const cqe = cq.cqes[head & cq.mask];
                    head +%= 1;
                    @atomicStore(u32, cq.head, head, .release);
                    s.onCompletion(cqe);
                }
            }
        }
    }
};

fn setupRing() IoUring {
    const required = linux.IORING_SETUP_CQSIZE | linux.IORING_SETUP_SINGLE_ISSUER | linux.IORING_SETUP_DEFER_TASKRUN;
    const optional = linux.IORING_SETUP_SUBMIT_ALL | linux.IORING_SETUP_COOP_TASKRUN;
    for ([_]u32{ required | optional, required }) |flags| {
        if (tryRing(flags)) |ring| {
            var buf: [64]u8 = undefined;
            const details = std.fmt.bufPrint(&buf, "setup_flags=0x{x} features=0x{x}", .{ flags, ring.features }) catch "";
            common.announceApi("io_uring", details);
            return ring;
        } else |err| switch (err) {
            error.ArgumentsInvalid => {},
            error.PermissionDenied => common.fatal("io_uring: io_uring_setup failed with EPERM (disabled by kernel.io_uring_disabled, or blocked by seccomp)", .{}),
            error.SystemOutdated => common.fatal("io_uring: not supported by this kernel (needs Linux 6.1+)", .{}),
            else => common.fatal("io_uring: io_uring_setup failed: {s}", .{@errorName(err)}),
        }
    }
    // Work out which required flag the kernel rejected.
    if (tryRing(linux.IORING_SETUP_CQSIZE)) |r| {
        var ring = r;
        ring.deinit();
    } else |_| common.fatal("io_uring: io_uring_setup rejects {d} entries with IORING_SETUP_CQSIZE", .{sq_entries});
    if (tryRing(linux.IORING_SETUP_CQSIZE | linux.IORING_SETUP_SINGLE_ISSUER)) |r| {
        var ring = r;
        ring.deinit();
    } else |_| common.fatal("io_uring: IORING_SETUP_SINGLE_ISSUER not supported (needs Linux 6.0+)", .{});
    common.fatal("io_uring: IORING_SETUP_DEFER_TASKRUN not supported (needs Linux 6.1+)", .{});
}

fn tryRing(flags: u32) !IoUring {
    var p = std.mem.zeroInit(linux.io_uring_params, .{ .flags = flags, .cq_entries = cq_entries });
    return IoUring.init_params(sq_entries, &p);
}

fn setupBuffers(ring_fd: i32) struct { ring: [*]linux.io_uring_buf, buffers: [*]u8 } {
    const prot = linux.PROT.READ | linux.PROT.WRITE;
    const map = linux.MAP{ .TYPE = .PRIVATE, .ANONYMOUS = true };
    const ring_rc = linux.mmap(null, buffer_count * @sizeOf(linux.io_uring_buf), prot, map, -1, 0);
    if (common.errno(ring_rc) != .SUCCESS) common.fatal("io_uring: mmap of the buffer ring failed", .{});
    const buffers_rc = linux.mmap(null, buffer_count * buffer_size, prot, map, -1, 0);
    if (common.errno(buffers_rc) != .SUCCESS) common.fatal("io_uring: mmap of the receive buffers failed", .{});

    var reg = std.mem.zeroInit(linux.io_uring_buf_reg, .{
        .ring_addr = @as(u64, ring_rc),
        .ring_entries = buffer_count,
        .bgid = buffer_group,
    });
    const rc = linux.io_uring_register(ring_fd, .REGISTER_PBUF_RING, &reg, 1);
    switch (common.errno(rc)) {
        .SUCCESS => {},
        else => |e| common.fatal("io_uring: IORING_REGISTER_PBUF_RING failed with {s} (provided buffer rings need Linux 5.19+)", .{common.errName(e)}),
    }
    return .{ .ring = @ptrFromInt(ring_rc), .buffers = @ptrFromInt(buffers_rc) };
}

pub fn main() noreturn {
    const cfg = common.parseArgs();
    const fd_limit = common.raiseNofile();
    const signal_fd = common.signalFd();
    const l = common.listen(cfg, false);

    const ring = setupRing();
    const b = setupBuffers(ring.fd);
    var s = Server{
        .ring = ring,
        .buffer_ring = b.ring,
        .buffers = b.buffers,
        .listener = l.fd,
        .signal_fd = signal_fd,
        .conns = common.allocConnTable(Conn, common.connTableSize(fd_limit)),
    };
    var bid: u16 = 0;
    while (bid < buffer_count) : (bid += 1) s.returnBuffer(bid);
    // Accepting before saying so: the listening line means the accept is in place.
    s.armServerOps();
    _ = linux.io_uring_enter(s.ring.fd, s.ring.flush_sq(), 0, 0, null);

    common.announceListener(l);
    s.run();
    common.close(s.listener);
    s.ring.deinit();
    linux.exit_group(0);
}
