//! Request framing and the fixed response, shared by both servers.

/// The one response, byte for byte.
pub const RESPONSE: &[u8; 81] =
    b"HTTP/1.1 200 OK\r\nContent-type: text/html\r\nContent-length: 17\r\n\r\nHave a nice day!\n";

/// Length of one response.
pub const RESPONSE_LEN: u64 = RESPONSE.len() as u64;

/// How many copies of the response the static output buffer holds.
pub const COPIES: usize = 64;

/// Size of the static output buffer.
pub const RESPONSES_LEN: usize = RESPONSE.len() * COPIES;

/// The response repeated `COPIES` times: every run of owed bytes is a slice of it.
pub static RESPONSES: [u8; RESPONSES_LEN] = repeat_response();

/// A head longer than this (counted from the end of the previous request) closes the
/// connection.
pub const MAX_HEAD: u32 = 8192;

const fn repeat_response() -> [u8; RESPONSES_LEN] {
    let mut out = [0u8; RESPONSES_LEN];
    let mut i = 0;
    while i < RESPONSES_LEN {
        out[i] = RESPONSE[i % RESPONSE.len()];
        i += 1;
    }
    out
}

/// The next bytes to send when `owed` bytes of responses are still owed: they start where
/// the owed tail begins inside one response, so any partial write resumes from the same
/// static buffer. Empty when nothing is owed.
pub fn owed_slice(owed: u64) -> &'static [u8] {
    let start = ((RESPONSE_LEN - owed % RESPONSE_LEN) % RESPONSE_LEN) as usize;
    let len = owed.min((RESPONSES_LEN - start) as u64) as usize;
    &RESPONSES[start..start + len]
}

/// The request head grew past `MAX_HEAD` bytes without ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadTooLong;

/// Per-connection framing state: how much of `\r\n\r\n` has matched (0..=3) and how many
/// bytes the current head has so far. Request contents never matter, so nothing else is
/// kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Framer {
    matched: u8,
    head_len: u32,
}

impl Framer {
    pub const fn new() -> Framer {
        Framer {
            matched: 0,
            head_len: 0,
        }
    }

    /// Scans received bytes once and returns how many requests they complete. On error
    /// the connection is to be closed and the state is meaningless.
    pub fn consume(&mut self, bytes: &[u8]) -> Result<u64, HeadTooLong> {
        let mut matched = self.matched;
        let mut head_len = self.head_len;
        let mut requests = 0u64;
        for &b in bytes {
            head_len += 1;
            if head_len > MAX_HEAD {
                return Err(HeadTooLong);
            }
            // Partial-match fallback for "\r\n\r\n": the only proper prefix that is
            // also a suffix after a mismatch is "\r".
            matched = match (b, matched) {
                (b'\r', 2) => 3,
                (b'\r', _) => 1,
                (b'\n', 1) => 2,
                (b'\n', 3) => {
                    requests += 1;
                    head_len = 0;
                    0
                }
                _ => 0,
            };
        }
        self.matched = matched;
        self.head_len = head_len;
        Ok(requests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    fn count(chunks: &[&[u8]]) -> Result<u64, HeadTooLong> {
        let mut f = Framer::new();
        let mut total = 0;
        for c in chunks {
            total += f.consume(c)?;
        }
        Ok(total)
    }

    #[test]
    fn response_is_81_bytes_and_repeated() {
        assert_eq!(RESPONSE.len(), 81);
        assert_eq!(RESPONSES.len(), 5184);
        for chunk in RESPONSES.chunks(81) {
            assert_eq!(chunk, &RESPONSE[..]);
        }
    }

    #[test]
    fn one_request() {
        assert_eq!(count(&[REQ]), Ok(1));
        assert_eq!(count(&[b"\r\n\r\n"]), Ok(1));
    }

    #[test]
    fn incomplete_request_is_not_counted() {
        assert_eq!(count(&[&REQ[..REQ.len() - 1]]), Ok(0));
        assert_eq!(count(&[b"GET / HTTP/1.1\n\n"]), Ok(0));
        assert_eq!(count(&[b"\r\n\n\r\n"]), Ok(0));
    }

    #[test]
    fn split_at_every_point() {
        let two: Vec<u8> = [REQ, REQ].concat();
        for i in 0..=two.len() {
            for j in i..=two.len() {
                assert_eq!(
                    count(&[&two[..i], &two[i..j], &two[j..]]),
                    Ok(2),
                    "{} {}",
                    i,
                    j
                );
            }
        }
    }

    #[test]
    fn byte_at_a_time() {
        let mut f = Framer::new();
        let mut total = 0;
        for _ in 0..3 {
            for b in REQ {
                total += f.consume(std::slice::from_ref(b)).unwrap();
            }
        }
        assert_eq!(total, 3);
    }

    #[test]
    fn pipelined() {
        let sixteen: Vec<u8> = REQ.repeat(16);
        assert_eq!(count(&[&sixteen]), Ok(16));
    }

    #[test]
    fn overlapping_prefixes() {
        assert_eq!(count(&[b"a\r\r\n\r\n"]), Ok(1));
        assert_eq!(count(&[b"a\r\n\r\r\n\r\n"]), Ok(1));
        assert_eq!(count(&[b"\r\n\r\n\r\n\r\n"]), Ok(2));
        assert_eq!(count(&[b"\r\n\r\n\n\r\n\r\n"]), Ok(2));
    }

    #[test]
    fn head_limit_counts_from_previous_request() {
        let head = |len: usize| {
            let mut h = vec![b'a'; len - 4];
            h.extend_from_slice(b"\r\n\r\n");
            h
        };
        assert_eq!(count(&[&head(8192)]), Ok(1));
        assert_eq!(count(&[&head(8193)]), Err(HeadTooLong));
        // Many maximal heads in a row are fine: the count restarts after each one.
        let many: Vec<u8> = head(8192).repeat(5);
        assert_eq!(count(&[&many[..3000], &many[3000..]]), Ok(5));
        // A head continues across reads.
        assert_eq!(count(&[&[b'a'; 8000], &[b'a'; 193]]), Err(HeadTooLong));
        assert_eq!(count(&[&[b'a'; 8000], &[b'a'; 192]]), Ok(0));
        assert_eq!(count(&[&vec![b'x'; 65536]]), Err(HeadTooLong));
    }

    #[test]
    fn owed_slice_resumes_inside_a_response() {
        assert!(owed_slice(0).is_empty());
        assert_eq!(owed_slice(81), &RESPONSE[..]);
        assert_eq!(owed_slice(16 * 81).len(), 16 * 81);
        assert_eq!(owed_slice(1000 * 81).len(), RESPONSES_LEN);
        // After a partial write of 10 bytes of a 2-response batch.
        let s = owed_slice(2 * 81 - 10);
        assert_eq!(s.len(), 2 * 81 - 10);
        assert_eq!(&s[..71], &RESPONSE[10..]);
        assert_eq!(&s[71..], &RESPONSE[..]);
        // Large debts: the slice always ends in the buffer and starts at the right byte.
        for owed in [1u64, 80, 82, 5183, 5184, 5185, 100_000] {
            let s = owed_slice(owed);
            let start = ((81 - owed % 81) % 81) as usize;
            assert_eq!(s[0], RESPONSE[start]);
            assert_eq!(s.len() as u64, owed.min((RESPONSES_LEN - start) as u64));
        }
    }

    #[test]
    fn sending_a_debt_in_pieces_reproduces_the_responses() {
        let mut owed = 300 * 81u64;
        let mut out = Vec::new();
        let mut step = 1usize;
        while owed > 0 {
            let s = owed_slice(owed);
            let n = s.len().min(step);
            out.extend_from_slice(&s[..n]);
            owed -= n as u64;
            step = step * 7 % 4099 + 1;
        }
        assert_eq!(out, RESPONSE.repeat(300));
    }
}
