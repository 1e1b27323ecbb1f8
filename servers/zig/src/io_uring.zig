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
const buf_count = 4096;
const buf_size = 4096;
const buf_group = 0;

const Op = enum(u8) { accept = 1, recv, send, signal };

fn userData(op: Op, fd: i32) u64 {
    return @as(u64, @intFromEnum(op)) << 32 | @as(u32, @bitCast(fd));
}

const Conn = struct {
    owed: u64 = 0,
    framer: http.Framer = .{},
    /// shutdown() was called; close() follows once no operation is in flight.
    closing: bool = false,
    recv_armed: bool = false,
    sending: bool = false,
    /// The peer sent EOF: close once the owed answers are sent.
    eof: bool = false,
};

const Server = struct {
    ring: IoUring,
    listen_fd: i32,
    sig_fd: i32,
    conns: []Conn,
    bufs: [*]u8,
    buf_ring: [*]linux.io_uring_buf,
    buf_tail: u16 = 0,
    accept_armed: bool = false,
    /// Accepting stopped on EMFILE/ENFILE; re-armed when a connection closes.
    accept_paused: bool = false,
    /// A multishot accept/recv has completed without EINVAL, so EINVAL later cannot
    /// mean the kernel lacks the multishot flag.
    accept_proven: bool = false,
    recv_proven: bool = false,

    fn enter(s: *Server, to_submit: u32, wait: u32, flags: u32) void {
        const rc = linux.io_uring_enter(s.ring.fd, to_submit, wait, flags, null);
        switch (common.errno(rc)) {
            // EINTR: a stop/continue; EAGAIN/EBUSY: the kernel is short of memory or
            // completion space; reaping completions is the way out of all three.
            .SUCCESS, .INTR, .AGAIN, .BUSY => {},
            else => |e| common.fatal("io_uring_enter failed: {s}", .{common.errName(e)}),
        }
    }

    fn getSqe(s: *Server) *linux.io_uring_sqe {
        return s.ring.get_sqe() catch {
            // The SQ is full: submit early, the only enter besides the loop's own.
            s.enter(s.ring.flush_sq(), 0, 0);
            return s.ring.get_sqe() catch common.fatal("io_uring: the submission queue stays full", .{});
        };
    }

    fn armAccept(s: *Server) void {
        const q = s.getSqe();
        q.prep_multishot_accept(s.listen_fd, null, null, linux.SOCK.CLOEXEC);
        q.user_data = userData(.accept, s.listen_fd);
        s.accept_armed = true;
    }

    fn armSignal(s: *Server) void {
        const q = s.getSqe();
        q.prep_poll_add(s.sig_fd, linux.POLL.IN);
        q.user_data = userData(.signal, s.sig_fd);
    }

    fn armRecv(s: *Server, fd: i32, c: *Conn) void {
        const q = s.getSqe();
        q.prep_rw(.RECV, fd, 0, 0, 0);
        q.flags = linux.IOSQE_BUFFER_SELECT;
        q.ioprio = linux.IORING_RECV_MULTISHOT;
        q.buf_index = buf_group;
        q.user_data = userData(.recv, fd);
        c.recv_armed = true;
    }

    fn send(s: *Server, fd: i32, c: *Conn) void {
        const q = s.getSqe();
        q.prep_send(fd, http.owedSlice(c.owed), linux.MSG.NOSIGNAL);
        q.user_data = userData(.send, fd);
        c.sending = true;
    }

    fn putBuf(s: *Server, bid: u16) void {
        // Field by field: entry 0's last field is the ring tail itself.
        const e = &s.buf_ring[s.buf_tail & (buf_count - 1)];
        e.addr = @intFromPtr(s.bufs + @as(usize, bid) * buf_size);
        e.len = buf_size;
        e.bid = bid;
        s.buf_tail +%= 1;
        @atomicStore(u16, &s.buf_ring[0].resv, s.buf_tail, .release);
    }

    fn startClose(s: *Server, fd: i32, c: *Conn) void {
        c.closing = true;
        // Wakes the pending recv (it ends with 0) and any send stuck on a full socket
        // (EPIPE), so their final completions arrive before the descriptor is freed.
        _ = linux.shutdown(fd, linux.SHUT.RDWR);
        s.finishClose(fd, c);
    }

    fn finishClose(s: *Server, fd: i32, c: *Conn) void {
        if (c.recv_armed or c.sending) return;
        common.close(fd);
        c.* = .{};
        if (s.accept_paused) {
            s.accept_paused = false;
            s.armAccept();
        }
    }

    fn onAccept(s: *Server, cqe: linux.io_uring_cqe) void {
        if (cqe.flags & linux.IORING_CQE_F_MORE == 0) s.accept_armed = false;
        if (cqe.res >= 0) {
            s.accept_proven = true;
            const fd: i32 = cqe.res;
            if (cqe.res >= s.conns.len) {
                common.close(fd);
            } else {
                common.setNodelay(fd);
                const c = &s.conns[@intCast(fd)];
                c.* = .{};
                s.armRecv(fd, c);
            }
        } else switch (cqe.err()) {
            .MFILE, .NFILE, .NOBUFS, .NOMEM => if (!s.accept_armed) {
                s.accept_paused = true;
            },
            .INVAL => if (!s.accept_proven)
                common.fatal("io_uring: multishot accept not supported (needs Linux 5.19+)", .{}),
            // ECONNABORTED and the like: that connection is gone, keep accepting.
            else => {},
        }
        if (!s.accept_armed and !s.accept_paused) s.armAccept();
    }

    fn onRecv(s: *Server, fd: i32, cqe: linux.io_uring_cqe) void {
        const c = &s.conns[@intCast(fd)];
        const more = cqe.flags & linux.IORING_CQE_F_MORE != 0;
        if (!more) c.recv_armed = false;
        var too_long = false;
        if (cqe.flags & linux.IORING_CQE_F_BUFFER != 0) {
            const bid: u16 = @intCast(cqe.flags >> linux.IORING_CQE_BUFFER_SHIFT);
            if (cqe.res > 0 and !c.closing) {
                const data = s.bufs[@as(usize, bid) * buf_size ..][0..@intCast(cqe.res)];
                if (http.consume(&c.framer, data)) |n| {
                    c.owed += @as(u64, n) * http.response.len;
                } else |_| too_long = true;
            }
            s.putBuf(bid);
        }
        if (c.closing) return s.finishClose(fd, c);
        if (too_long) return s.startClose(fd, c);

        if (cqe.res != -@as(i32, @intFromEnum(linux.E.INVAL))) s.recv_proven = true;
        if (cqe.res > 0) {
            if (c.owed > 0 and !c.sending) s.send(fd, c);
            if (!more) s.armRecv(fd, c);
        } else if (cqe.res == 0) {
            c.eof = true;
            // Anything owed is covered by the send in flight, which closes at the end.
            if (!c.sending) s.startClose(fd, c);
        } else switch (cqe.err()) {
            // Out of provided buffers for a moment; they are all handed back by now.
            .NOBUFS => if (!more) s.armRecv(fd, c),
            .INVAL => if (!s.recv_proven)
                common.fatal("io_uring: multishot recv not supported (needs Linux 6.0+)", .{})
            else
                s.startClose(fd, c),
            else => s.startClose(fd, c),
        }
    }

    fn onSend(s: *Server, fd: i32, cqe: linux.io_uring_cqe) void {
        const c = &s.conns[@intCast(fd)];
        c.sending = false;
        if (c.closing) return s.finishClose(fd, c);
        if (cqe.res <= 0) return s.startClose(fd, c);
        c.owed -= @intCast(cqe.res);
        // Answers that became owed while this send was in flight go out together now.
        if (c.owed > 0) {
            s.send(fd, c);
        } else if (c.eof) {
            s.startClose(fd, c);
        }
    }

    fn handle(s: *Server, cqe: linux.io_uring_cqe) void {
        const fd: i32 = @bitCast(@as(u32, @truncate(cqe.user_data)));
        switch (@as(Op, @enumFromInt(@as(u8, @truncate(cqe.user_data >> 32))))) {
            .accept => s.onAccept(cqe),
            .recv => s.onRecv(fd, cqe),
            .send => s.onSend(fd, cqe),
            .signal => if (cqe.res >= 0)
                linux.exit_group(0)
            else
                common.fatal("io_uring: poll on the signalfd failed: {s}", .{common.errName(cqe.err())}),
        }
    }

    fn run(s: *Server) noreturn {
        const cq = &s.ring.cq;
        while (true) {
            s.enter(s.ring.flush_sq(), 1, linux.IORING_ENTER_GETEVENTS);
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
                    s.handle(cqe);
                }
            }
        }
    }
};

fn setupRing() IoUring {
    const required = linux.IORING_SETUP_SINGLE_ISSUER | linux.IORING_SETUP_DEFER_TASKRUN | linux.IORING_SETUP_CQSIZE;
    const optional = linux.IORING_SETUP_SUBMIT_ALL | linux.IORING_SETUP_COOP_TASKRUN;
    const attempts = [_]u32{ required | optional, required | linux.IORING_SETUP_SUBMIT_ALL, required };
    for (attempts) |flags| {
        if (tryRing(flags)) |ring| return ring else |err| switch (err) {
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

fn setupBufRing(ring_fd: i32) struct { ring: [*]linux.io_uring_buf, bufs: [*]u8 } {
    const prot = linux.PROT.READ | linux.PROT.WRITE;
    const map = linux.MAP{ .TYPE = .PRIVATE, .ANONYMOUS = true };
    const ring_rc = linux.mmap(null, buf_count * @sizeOf(linux.io_uring_buf), prot, map, -1, 0);
    if (common.errno(ring_rc) != .SUCCESS) common.fatal("io_uring: mmap of the buffer ring failed", .{});
    const bufs_rc = linux.mmap(null, buf_count * buf_size, prot, map, -1, 0);
    if (common.errno(bufs_rc) != .SUCCESS) common.fatal("io_uring: mmap of the receive buffers failed", .{});

    var reg = std.mem.zeroInit(linux.io_uring_buf_reg, .{
        .ring_addr = @as(u64, ring_rc),
        .ring_entries = buf_count,
        .bgid = buf_group,
    });
    const rc = linux.io_uring_register(ring_fd, .REGISTER_PBUF_RING, &reg, 1);
    switch (common.errno(rc)) {
        .SUCCESS => {},
        else => |e| common.fatal("io_uring: IORING_REGISTER_PBUF_RING failed with {s} (provided buffer rings need Linux 5.19+)", .{common.errName(e)}),
    }
    return .{ .ring = @ptrFromInt(ring_rc), .bufs = @ptrFromInt(bufs_rc) };
}

pub fn main() noreturn {
    const cfg = common.parseArgs();
    const nofile = common.raiseNofile();
    const sig_fd = common.signalFd();
    const l = common.listen(cfg, false);

    const ring = setupRing();
    const br = setupBufRing(ring.fd);
    var s = Server{
        .ring = ring,
        .listen_fd = l.fd,
        .sig_fd = sig_fd,
        .conns = common.allocTable(Conn, common.tableSize(nofile)),
        .bufs = br.bufs,
        .buf_ring = br.ring,
    };
    var i: u16 = 0;
    while (i < buf_count) : (i += 1) s.putBuf(i);
    s.armSignal();
    s.armAccept();

    common.announce(l);
    s.run();
}
