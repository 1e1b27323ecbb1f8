//! Request framing and the fixed response, shared by both Zig servers.

const std = @import("std");

pub const response = "HTTP/1.1 200 OK\r\nContent-type: text/html\r\nContent-length: 17\r\n\r\nHave a nice day!\n";

comptime {
    std.debug.assert(response.len == 81);
}

pub const responses_in_buffer = 64;

/// The response repeated 64 times: any run of owed answers is a slice of it.
pub const response_buffer: [response.len * responses_in_buffer]u8 = response.* ** responses_in_buffer;

pub const max_head_len = 8192;

const terminator = "\r\n\r\n";

/// Per-connection framing state; requests are never stored, only counted.
pub const Framer = struct {
    /// Bytes of "\r\n\r\n" matched so far, 0..3.
    matched: u8 = 0,
    /// Bytes of the current head seen so far, counted from the end of the previous request.
    head_len: u16 = 0,
};

/// Scans `bytes` once and returns how many requests they complete.
/// A head reaching 8193 bytes without its end is error.HeadTooLong; the state is then
/// meaningless because the caller closes the connection.
pub fn consume(f: *Framer, bytes: []const u8) error{HeadTooLong}!usize {
    var matched = f.matched;
    var head_len: usize = f.head_len;
    var count: usize = 0;
    for (bytes) |b| {
        head_len += 1;
        if (head_len > max_head_len) return error.HeadTooLong;
        if (b == terminator[matched]) {
            matched += 1;
            if (matched == terminator.len) {
                count += 1;
                matched = 0;
                head_len = 0;
            }
        } else {
            // Every proper prefix of the terminator that ends in '\r' is just "\r",
            // so a mismatch falls back to state 1 on '\r' and to 0 otherwise.
            matched = @intFromBool(b == '\r');
        }
    }
    f.matched = matched;
    f.head_len = @intCast(head_len);
    return count;
}

/// The next bytes to send when `owed` bytes of answers are owed (owed > 0): the owed
/// bytes always end on a response boundary, so they start at a fixed offset into a
/// response, and the slice runs to the end of the static buffer at most.
pub fn owedSlice(owed: u64) []const u8 {
    const offset: usize = @intCast((response.len - owed % response.len) % response.len);
    const avail = response_buffer.len - offset;
    const len: usize = if (owed < avail) @intCast(owed) else avail;
    return response_buffer[offset..][0..len];
}

const testing = std.testing;

fn feed(f: *Framer, bytes: []const u8) !usize {
    return consume(f, bytes);
}

test "one request" {
    var f = Framer{};
    try testing.expectEqual(@as(usize, 1), try feed(&f, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    try testing.expectEqual(@as(u8, 0), f.matched);
    try testing.expectEqual(@as(u16, 0), f.head_len);
}

test "pipelined requests in one buffer" {
    var f = Framer{};
    const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    try testing.expectEqual(@as(usize, 16), try feed(&f, req ** 16));
}

test "request split at every possible point" {
    const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    var i: usize = 0;
    while (i <= req.len) : (i += 1) {
        var j: usize = i;
        while (j <= req.len) : (j += 1) {
            var f = Framer{};
            var n = try feed(&f, req[0..i]);
            n += try feed(&f, req[i..j]);
            n += try feed(&f, req[j..]);
            try testing.expectEqual(@as(usize, 1), n);
        }
    }
}

test "byte by byte" {
    const req = "GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    var f = Framer{};
    var n: usize = 0;
    for (req) |b| n += try feed(&f, &[_]u8{b});
    try testing.expectEqual(@as(usize, 2), n);
}

test "near misses are not terminators" {
    var f = Framer{};
    try testing.expectEqual(@as(usize, 0), try feed(&f, "a\r\n\nb\n\r\n\rc\r\r\n\r"));
    try testing.expectEqual(@as(u8, 3), f.matched);
    try testing.expectEqual(@as(usize, 1), try feed(&f, "\n"));
}

test "repeated carriage returns" {
    var f = Framer{};
    try testing.expectEqual(@as(usize, 1), try feed(&f, "x\r\r\r\n\r\n"));
    try testing.expectEqual(@as(usize, 1), try feed(&f, "\r\n\r\r\n\r\n"));
}

test "bare terminators are requests" {
    var f = Framer{};
    try testing.expectEqual(@as(usize, 3), try feed(&f, "\r\n\r\n" ** 3));
}

test "head of exactly 8192 bytes is accepted" {
    var f = Framer{};
    const filler = [_]u8{'a'} ** (max_head_len - 4);
    try testing.expectEqual(@as(usize, 0), try feed(&f, &filler));
    try testing.expectEqual(@as(usize, 1), try feed(&f, "\r\n\r\n"));
    // The limit counts from the end of the previous request.
    try testing.expectEqual(@as(usize, 0), try feed(&f, &filler));
    try testing.expectEqual(@as(usize, 1), try feed(&f, "\r\n\r\n"));
}

test "head of 8193 bytes is too long" {
    var f = Framer{};
    const filler = [_]u8{'a'} ** (max_head_len - 3);
    try testing.expectEqual(@as(usize, 0), try feed(&f, &filler));
    try testing.expectError(error.HeadTooLong, feed(&f, "\r\n\r\n"));
}

test "64 KiB head is too long" {
    var f = Framer{};
    const big = [_]u8{'a'} ** 65536;
    try testing.expectError(error.HeadTooLong, feed(&f, &big));
}

test "response buffer" {
    try testing.expectEqual(@as(usize, 5184), response_buffer.len);
    var i: usize = 0;
    while (i < responses_in_buffer) : (i += 1) {
        try testing.expectEqualStrings(response, response_buffer[i * 81 ..][0..81]);
    }
}

test "owed slices reproduce the response stream" {
    // For any owed count and any partial sends, the bytes sent must be the tail of
    // `owed / 81` responses.
    const sizes = [_]u64{ 81, 162, 81 * 64, 81 * 65, 81 * 200 };
    const chunks = [_]usize{ 1, 7, 80, 81, 100, 5000, 1 << 20 };
    for (sizes) |total| {
        for (chunks) |chunk| {
            var owed = total;
            var sent: u64 = 0;
            while (owed > 0) {
                const s = owedSlice(owed);
                try testing.expect(s.len > 0);
                const n = @min(s.len, chunk);
                for (s[0..n], 0..) |b, k| {
                    try testing.expectEqual(response[@intCast((sent + k) % 81)], b);
                }
                sent += n;
                owed -= n;
            }
            try testing.expectEqual(total, sent);
        }
    }
}

test "owed slice length" {
    try testing.expectEqual(@as(usize, 81), owedSlice(81).len);
    try testing.expectEqual(@as(usize, 5184), owedSlice(81 * 64).len);
    try testing.expectEqual(@as(usize, 5184), owedSlice(81 * 1000).len);
    // 10 bytes left of a response: start at offset 71.
    try testing.expectEqual(@as(usize, 10), owedSlice(10).len);
    try testing.expectEqualStrings(response[71..], owedSlice(10));
    try testing.expectEqual(@as(usize, 5184 - 71), owedSlice(10 + 81 * 100).len);
}
