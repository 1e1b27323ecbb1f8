//! Startup shared by both Zig servers: arguments, limits, signals, the listener.
//! Everything here talks to the kernel through raw std.os.linux syscalls and checks
//! errno itself, so no error path can reach a panic or `unreachable`.

const std = @import("std");
const linux = std.os.linux;

pub const E = linux.E;

pub fn errno(rc: usize) E {
    return E.init(rc);
}

/// The errno's name, safe for values this std does not name (unlike @tagName).
pub fn errName(e: E) []const u8 {
    inline for (@typeInfo(E).@"enum".fields) |f| {
        if (@intFromEnum(e) == f.value) return "E" ++ f.name;
    }
    return "unknown errno";
}

pub const Config = struct {
    addr: [4]u8 = .{ 127, 0, 0, 1 },
    port: u16 = 8000,
};

fn writeAll(fd: i32, bytes: []const u8) void {
    var rest = bytes;
    while (rest.len > 0) {
        const rc = linux.write(fd, rest.ptr, rest.len);
        switch (errno(rc)) {
            .SUCCESS => rest = rest[rc..],
            .INTR => {},
            else => return,
        }
    }
}

fn printLine(fd: i32, comptime fmt: []const u8, args: anytype) void {
    var buf: [512]u8 = undefined;
    const line = std.fmt.bufPrint(&buf, fmt ++ "\n", args) catch blk: {
        buf[buf.len - 1] = '\n';
        break :blk buf[0..];
    };
    writeAll(fd, line);
}

fn programName() []const u8 {
    if (std.os.argv.len == 0) return "server";
    const arg0 = std.mem.span(std.os.argv[0]);
    return std.fs.path.basename(arg0);
}

/// A startup failure: one line on stderr, exit status 1.
pub fn fatal(comptime fmt: []const u8, args: anytype) noreturn {
    printLine(2, "{s}: " ++ fmt, .{programName()} ++ args);
    linux.exit_group(1);
}

fn usage(comptime fmt: []const u8, args: anytype) noreturn {
    const name = programName();
    printLine(2, "{s}: " ++ fmt ++ " (usage: {s} [--host ADDR] [--port PORT])", .{name} ++ args ++ .{name});
    linux.exit_group(2);
}

pub fn parseIp4(s: []const u8) ?[4]u8 {
    var out: [4]u8 = undefined;
    var it = std.mem.splitScalar(u8, s, '.');
    var i: usize = 0;
    while (it.next()) |part| : (i += 1) {
        if (i == 4) return null;
        out[i] = parseDecimal(u8, part, 3) orelse return null;
    }
    if (i != 4) return null;
    return out;
}

pub fn parsePort(s: []const u8) ?u16 {
    return parseDecimal(u16, s, 5);
}

/// Plain decimal digits only (std.fmt.parseInt would also take '+' and '_').
fn parseDecimal(comptime T: type, s: []const u8, max_digits: usize) ?T {
    if (s.len == 0 or s.len > max_digits) return null;
    var v: u32 = 0;
    for (s) |c| {
        if (c < '0' or c > '9') return null;
        v = v * 10 + (c - '0');
    }
    if (v > std.math.maxInt(T)) return null;
    return @intCast(v);
}

pub fn parseArgs() Config {
    var cfg = Config{};
    var it = std.process.args();
    _ = it.skip();
    while (it.next()) |arg| {
        if (std.mem.eql(u8, arg, "--help") or std.mem.eql(u8, arg, "-h")) {
            printLine(1, "usage: {s} [--host ADDR] [--port PORT]", .{programName()});
            linux.exit_group(0);
        } else if (std.mem.eql(u8, arg, "--host")) {
            const v = it.next() orelse usage("--host needs a value", .{});
            cfg.addr = parseIp4(v) orelse usage("bad IPv4 address '{s}'", .{v});
        } else if (std.mem.eql(u8, arg, "--port")) {
            const v = it.next() orelse usage("--port needs a value", .{});
            cfg.port = parsePort(v) orelse usage("bad port '{s}'", .{v});
        } else {
            usage("unknown argument '{s}'", .{arg});
        }
    }
    return cfg;
}

/// Raises the soft RLIMIT_NOFILE to the hard limit and returns the limit now in force.
pub fn raiseNofile() u64 {
    var lim: linux.rlimit = undefined;
    if (errno(linux.getrlimit(.NOFILE, &lim)) != .SUCCESS) fatal("getrlimit(RLIMIT_NOFILE) failed", .{});
    if (lim.cur < lim.max) {
        const want = linux.rlimit{ .cur = lim.max, .max = lim.max };
        const e = errno(linux.setrlimit(.NOFILE, &want));
        if (e != .SUCCESS) fatal("setrlimit(RLIMIT_NOFILE, {d}) failed: {s}", .{ lim.max, errName(e) });
        lim.cur = lim.max;
    }
    return lim.cur;
}

/// Connection tables are indexed by descriptor and never hold more entries than this
/// (4,194,304), however high the descriptor limit.
pub const conn_table_max: usize = 1 << 22;

/// How often accepting is retried while paused after a descriptor or memory error.
pub const accept_retry_ms = 100;

/// How many entries the connection table has under a descriptor limit of `fd_limit`:
/// min(fd_limit, conn_table_max). A descriptor at or above it is closed when accepted.
pub fn connTableSize(fd_limit: u64) usize {
    return @intCast(@min(fd_limit, conn_table_max));
}

/// Whether accept(2) asks to retry at once after `e`: the connection failed, not the
/// listener. Every other error except EAGAIN pauses accepting.
pub fn acceptErrorRetried(e: E) bool {
    return switch (e) {
        .INTR, .CONNABORTED, .PERM => true,
        // accept(2): Linux passes pending network errors of the new connection on.
        .PROTO, .NETDOWN, .NOPROTOOPT, .HOSTDOWN, .NONET, .HOSTUNREACH, .OPNOTSUPP, .NETUNREACH => true,
        else => false,
    };
}

/// Blocks SIGTERM and SIGINT, ignores SIGPIPE, and returns a signalfd for the two.
pub fn signalFd() i32 {
    var mask = linux.empty_sigset;
    linux.sigaddset(&mask, linux.SIG.TERM);
    linux.sigaddset(&mask, linux.SIG.INT);
    if (errno(linux.sigprocmask(linux.SIG.BLOCK, &mask, null)) != .SUCCESS) fatal("sigprocmask failed", .{});

    const ign = linux.Sigaction{
        .handler = .{ .handler = linux.SIG.IGN },
        .mask = linux.empty_sigset,
        .flags = 0,
    };
    if (errno(linux.sigaction(linux.SIG.PIPE, &ign, null)) != .SUCCESS) fatal("sigaction(SIGPIPE) failed", .{});

    const rc = linux.signalfd(-1, &mask, linux.SFD.CLOEXEC | linux.SFD.NONBLOCK);
    if (errno(rc) != .SUCCESS) fatal("signalfd failed: {s}", .{errName(errno(rc))});
    return @intCast(rc);
}

pub const Listener = struct {
    fd: i32,
    addr: [4]u8,
    port: u16,
};

pub fn listen(cfg: Config, nonblocking: bool) Listener {
    var ty: u32 = linux.SOCK.STREAM | linux.SOCK.CLOEXEC;
    if (nonblocking) ty |= linux.SOCK.NONBLOCK;
    const rc = linux.socket(linux.AF.INET, ty, 0);
    if (errno(rc) != .SUCCESS) fatal("socket failed: {s}", .{errName(errno(rc))});
    const fd: i32 = @intCast(rc);

    const one: c_int = 1;
    var e = errno(linux.setsockopt(fd, linux.SOL.SOCKET, linux.SO.REUSEADDR, std.mem.asBytes(&one), @sizeOf(c_int)));
    if (e != .SUCCESS) fatal("setsockopt(SO_REUSEADDR) failed: {s}", .{errName(e)});

    var sa = linux.sockaddr.in{
        .port = std.mem.nativeToBig(u16, cfg.port),
        .addr = @bitCast(cfg.addr),
    };
    e = errno(linux.bind(fd, @ptrCast(&sa), @sizeOf(linux.sockaddr.in)));
    if (e != .SUCCESS) fatal("bind {d}.{d}.{d}.{d}:{d} failed: {s}", .{ cfg.addr[0], cfg.addr[1], cfg.addr[2], cfg.addr[3], cfg.port, errName(e) });
    e = errno(linux.listen(fd, 4096));
    if (e != .SUCCESS) fatal("listen failed: {s}", .{errName(e)});

    var len: linux.socklen_t = @sizeOf(linux.sockaddr.in);
    e = errno(linux.getsockname(fd, @ptrCast(&sa), &len));
    if (e != .SUCCESS) fatal("getsockname failed: {s}", .{errName(e)});
    return .{ .fd = fd, .addr = @bitCast(sa.addr), .port = std.mem.bigToNative(u16, sa.port) };
}

/// Prints `server: api=API kernel=RELEASE`, then ` DETAILS` if any, as one line.
pub fn announceApi(api: []const u8, details: ?[]const u8) void {
    var uts: linux.utsname = undefined;
    const e = errno(linux.uname(&uts));
    if (e != .SUCCESS) fatal("uname failed: {s}", .{errName(e)});
    const kernel = std.mem.sliceTo(&uts.release, 0);
    if (details) |d| {
        printLine(1, "server: api={s} kernel={s} {s}", .{ api, kernel, d });
    } else {
        printLine(1, "server: api={s} kernel={s}", .{ api, kernel });
    }
}

/// Printed once the server is ready; a single write, so nothing is left buffered.
pub fn announceListener(l: Listener) void {
    printLine(1, "listening on {d}.{d}.{d}.{d}:{d}", .{ l.addr[0], l.addr[1], l.addr[2], l.addr[3], l.port });
}

pub fn setNodelay(fd: i32) void {
    const one: c_int = 1;
    // A failure only costs latency on that connection, so it is ignored.
    _ = linux.setsockopt(fd, linux.IPPROTO.TCP, linux.TCP.NODELAY, std.mem.asBytes(&one), @sizeOf(c_int));
}

pub fn close(fd: i32) void {
    // Linux releases the descriptor even when close reports an error.
    _ = linux.close(fd);
}

/// A zeroed table of `n` entries; its pages are only backed once touched, so a large
/// table costs address space, not memory.
pub fn allocConnTable(comptime T: type, n: usize) []T {
    const bytes = n * @sizeOf(T);
    const rc = linux.mmap(null, bytes, linux.PROT.READ | linux.PROT.WRITE, .{ .TYPE = .PRIVATE, .ANONYMOUS = true, .NORESERVE = true }, -1, 0);
    if (errno(rc) != .SUCCESS) fatal("mmap of {d} bytes for the connection table failed", .{bytes});
    const p: [*]T = @ptrFromInt(rc);
    return p[0..n];
}

test "connection table size is capped" {
    const t = std.testing;
    try t.expectEqual(@as(usize, 4_194_304), conn_table_max);
    try t.expectEqual(@as(usize, 0), connTableSize(0));
    try t.expectEqual(@as(usize, 1024), connTableSize(1024));
    try t.expectEqual(@as(usize, 20_000), connTableSize(20_000));
    try t.expectEqual(conn_table_max - 1, connTableSize(conn_table_max - 1));
    try t.expectEqual(conn_table_max, connTableSize(conn_table_max));
    try t.expectEqual(conn_table_max, connTableSize(conn_table_max + 1));
    // Hard limits near 2^30 are what some container runtimes set.
    try t.expectEqual(conn_table_max, connTableSize(1 << 30));
    try t.expectEqual(conn_table_max, connTableSize(std.math.maxInt(u64)));
}

test "connection table under a huge limit" {
    const t = std.testing;
    const Entry = struct { a: u64, b: u64, c: u64 };
    const n = connTableSize(1 << 30);
    const table = allocConnTable(Entry, n);
    defer _ = linux.munmap(@ptrCast(table.ptr), n * @sizeOf(Entry));
    try t.expectEqual(conn_table_max, table.len);
    try t.expect(table[0].a == 0 and table[0].b == 0 and table[n - 1].c == 0);
    table[n - 1].c = 1;
    try t.expectEqual(@as(u64, 1), table[n - 1].c);
}

test "accept errors retried" {
    const t = std.testing;
    for ([_]E{ .INTR, .CONNABORTED, .PERM, .PROTO, .NETDOWN, .NOPROTOOPT, .HOSTDOWN, .NONET, .HOSTUNREACH, .OPNOTSUPP, .NETUNREACH }) |e| {
        try t.expect(acceptErrorRetried(e));
    }
    for ([_]E{ .MFILE, .NFILE, .NOBUFS, .NOMEM, .INVAL, .BADF }) |e| {
        try t.expect(!acceptErrorRetried(e));
    }
}

test "ipv4 parsing" {
    const t = std.testing;
    try t.expectEqual([4]u8{ 127, 0, 0, 1 }, parseIp4("127.0.0.1").?);
    try t.expectEqual([4]u8{ 0, 0, 0, 0 }, parseIp4("0.0.0.0").?);
    try t.expectEqual([4]u8{ 255, 255, 255, 255 }, parseIp4("255.255.255.255").?);
    try t.expect(parseIp4("256.0.0.1") == null);
    try t.expect(parseIp4("1.2.3") == null);
    try t.expect(parseIp4("1.2.3.4.5") == null);
    try t.expect(parseIp4("1..3.4") == null);
    try t.expect(parseIp4("localhost") == null);
    try t.expect(parseIp4("") == null);
}

test "port parsing" {
    const t = std.testing;
    try t.expectEqual(@as(u16, 0), parsePort("0").?);
    try t.expectEqual(@as(u16, 65535), parsePort("65535").?);
    try t.expect(parsePort("65536") == null);
    try t.expect(parsePort("-1") == null);
    try t.expect(parsePort("+80") == null);
    try t.expect(parsePort("8_0") == null);
    try t.expect(parsePort("") == null);
    try t.expect(parsePort("123456") == null);
}
