//! Start-up shared by both servers: arguments, limits, signals, the listening socket.

use crate::sys::{self, Errno};
use std::alloc::{self, Layout};
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::io::RawFd;

pub const DEFAULT_HOST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
pub const DEFAULT_PORT: u16 = 8000;
pub const BACKLOG: i32 = 4096;

/// Connection tables are indexed by descriptor and never hold more entries than this
/// (4,194,304), however high the descriptor limit.
pub const CONN_TABLE_MAX: usize = 1 << 22;

/// How often accepting is retried while paused after a descriptor or memory error.
pub const ACCEPT_RETRY_MS: u64 = 100;

/// How many entries the connection table has under a descriptor limit of `fd_limit`:
/// min(fd_limit, CONN_TABLE_MAX). A descriptor at or above it is closed when accepted.
pub fn conn_table_size(fd_limit: u64) -> usize {
    fd_limit.min(CONN_TABLE_MAX as u64) as usize
}

/// A type whose all-zero bytes are a valid value (its default): plain integers and bools.
///
/// # Safety
/// Implement it only for types made of such fields.
pub unsafe trait Zeroable: Copy {}

/// A zeroed table of `count` entries, or None if there is no memory for it. The
/// allocator maps fresh zero pages for a block this large, so they are only backed once
/// touched: a large table costs address space, not memory.
pub fn alloc_conn_table<T: Zeroable>(count: usize) -> Option<Vec<T>> {
    if count == 0 || std::mem::size_of::<T>() == 0 {
        return Some(Vec::new());
    }
    let layout = Layout::array::<T>(count).ok()?;
    // Safety: all-zero bytes are a valid T (Zeroable), and the Vec takes the block with
    // the layout it will free it with.
    unsafe {
        let table = alloc::alloc_zeroed(layout) as *mut T;
        if table.is_null() {
            return None;
        }
        Some(Vec::from_raw_parts(table, count, count))
    }
}

/// Whether accept(2) asks to retry at once after `e`: the connection failed, not the
/// listener. Every other error except EAGAIN pauses accepting.
pub fn accept_error_retried(e: Errno) -> bool {
    matches!(
        e,
        sys::EINTR
            | sys::ECONNABORTED
            | sys::EPERM
            // accept(2): Linux passes pending network errors of the new connection on.
            | sys::EPROTO
            | sys::ENETDOWN
            | sys::ENOPROTOOPT
            | sys::EHOSTDOWN
            | sys::ENONET
            | sys::EHOSTUNREACH
            | sys::EOPNOTSUPP
            | sys::ENETUNREACH
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub host: Ipv4Addr,
    pub port: u16,
}

const USAGE: &str = "[--host ADDR] [--port PORT]";

/// Parses `--host ADDR` / `--port PORT` (also `--opt=value`).
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Config, String> {
    let mut cfg = Config {
        host: DEFAULT_HOST,
        port: DEFAULT_PORT,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.find('=') {
            Some(i) if arg.starts_with("--") => {
                (arg[..i].to_string(), Some(arg[i + 1..].to_string()))
            }
            _ => (arg.clone(), None),
        };
        if name == "--help" || name == "-h" {
            println!("usage: {} {}", name_of_program(), USAGE);
            std::process::exit(0);
        }
        if name != "--host" && name != "--port" {
            return Err(format!("unknown argument '{}'", arg));
        }
        let value = match inline.or_else(|| args.next()) {
            Some(v) => v,
            None => return Err(format!("{} needs a value", name)),
        };
        if name == "--host" {
            cfg.host = value
                .parse()
                .map_err(|_| format!("--host: '{}' is not an IPv4 address", value))?;
        } else {
            cfg.port = value
                .parse()
                .map_err(|_| format!("--port: '{}' is not a port number (0-65535)", value))?;
        }
    }
    Ok(cfg)
}

fn name_of_program() -> String {
    std::env::args()
        .next()
        .unwrap_or_else(|| "server".to_string())
}

/// Prints `NAME: MESSAGE` on stderr and exits with `status`.
pub fn exit_with(name: &str, status: i32, message: &str) -> ! {
    eprintln!("{}: {}", name, message);
    std::process::exit(status)
}

/// A start-up failure: exit status 1.
pub fn die(name: &str, message: &str) -> ! {
    exit_with(name, 1, message)
}

/// What every server needs before its event loop starts.
pub struct Startup {
    pub listener: RawFd,
    pub signal_fd: RawFd,
    pub host: Ipv4Addr,
    pub port: u16,
    /// The soft RLIMIT_NOFILE once raised.
    pub fd_limit: u64,
}

/// Parses the command line (bad arguments exit 2), raises RLIMIT_NOFILE, turns SIGTERM
/// and SIGINT into a signalfd, ignores SIGPIPE and opens the listening socket. Failures
/// exit 1. `nonblocking_listener` is for the epoll server's accept loop.
pub fn start(name: &str, nonblocking_listener: bool) -> Startup {
    let mut argv = Vec::new();
    for a in std::env::args_os().skip(1) {
        match a.into_string() {
            Ok(s) => argv.push(s),
            Err(a) => exit_with(
                name,
                2,
                &format!("argument {:?} is not UTF-8; usage: {}", a, USAGE),
            ),
        }
    }
    let cfg = match parse_args(argv) {
        Ok(c) => c,
        Err(e) => exit_with(name, 2, &format!("{}; usage: {}", e, USAGE)),
    };

    // Not fatal: the server still works, with fewer connections.
    if let Err(e) = sys::raise_nofile_limit() {
        eprintln!("{}: cannot raise RLIMIT_NOFILE: {}", name, sys::strerror(e));
    }
    let fd_limit = sys::nofile_limit().unwrap_or_else(|e| {
        die(
            name,
            &format!("getrlimit(RLIMIT_NOFILE): {}", sys::strerror(e)),
        )
    });

    let signal_fd = sys::block_into_signalfd(&[sys::SIGTERM, sys::SIGINT])
        .unwrap_or_else(|e| die(name, &format!("signalfd: {}", sys::strerror(e))));
    sys::ignore_signal(sys::SIGPIPE);

    let (listener, ip, port) =
        sys::tcp_listen(cfg.host.octets(), cfg.port, BACKLOG, nonblocking_listener).unwrap_or_else(
            |(what, e)| {
                die(
                    name,
                    &format!("{} {}:{}: {}", what, cfg.host, cfg.port, sys::strerror(e)),
                )
            },
        );
    Startup {
        listener,
        signal_fd,
        host: Ipv4Addr::from(ip),
        port,
        fd_limit,
    }
}

fn print_line(line: &str) {
    let out = std::io::stdout();
    let mut out = out.lock();
    // If stdout is gone nobody is waiting for the line; keep serving anyway.
    let _ = writeln!(out, "{}", line);
    let _ = out.flush();
}

/// Prints `server: api=API kernel=RELEASE`, then ` DETAILS` if any, as one line.
pub fn announce_api(name: &str, api: &str, details: Option<&str>) {
    let kernel = sys::kernel_release()
        .unwrap_or_else(|e| die(name, &format!("uname: {}", sys::strerror(e))));
    match details {
        Some(details) => print_line(&format!(
            "server: api={} kernel={} {}",
            api, kernel, details
        )),
        None => print_line(&format!("server: api={} kernel={}", api, kernel)),
    }
}

/// The one line that tells the world the server is ready.
pub fn announce_listener(s: &Startup) {
    print_line(&format!("listening on {}:{}", s.host, s.port));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults() {
        assert_eq!(
            parse(&[]),
            Ok(Config {
                host: DEFAULT_HOST,
                port: 8000
            })
        );
    }

    #[test]
    fn host_and_port() {
        let c = parse(&["--host", "0.0.0.0", "--port", "0"]).unwrap();
        assert_eq!(
            c,
            Config {
                host: Ipv4Addr::new(0, 0, 0, 0),
                port: 0
            }
        );
        let c = parse(&["--port=9000", "--host=10.1.2.3"]).unwrap();
        assert_eq!(
            c,
            Config {
                host: Ipv4Addr::new(10, 1, 2, 3),
                port: 9000
            }
        );
    }

    #[derive(Clone, Copy)]
    struct Entry {
        a: u64,
        b: u64,
        c: u64,
    }

    unsafe impl Zeroable for Entry {}

    #[test]
    fn table_size_is_capped() {
        assert_eq!(CONN_TABLE_MAX, 4_194_304);
        assert_eq!(conn_table_size(0), 0);
        assert_eq!(conn_table_size(1024), 1024);
        assert_eq!(conn_table_size(20_000), 20_000);
        assert_eq!(
            conn_table_size(CONN_TABLE_MAX as u64 - 1),
            CONN_TABLE_MAX - 1
        );
        assert_eq!(conn_table_size(CONN_TABLE_MAX as u64), CONN_TABLE_MAX);
        assert_eq!(conn_table_size(CONN_TABLE_MAX as u64 + 1), CONN_TABLE_MAX);
        // Hard limits near 2^30 are what some container runtimes set.
        assert_eq!(conn_table_size(1 << 30), CONN_TABLE_MAX);
        assert_eq!(conn_table_size(u64::MAX), CONN_TABLE_MAX);
    }

    #[test]
    fn table_under_a_huge_limit() {
        let count = conn_table_size(1 << 30);
        let mut table: Vec<Entry> = alloc_conn_table(count).expect("a capped table fits");
        assert_eq!(table.len(), CONN_TABLE_MAX);
        assert!(table[0].a == 0 && table[0].b == 0 && table[count - 1].c == 0);
        table[count - 1].c = 1;
        assert_eq!(table[count - 1].c, 1);
    }

    #[test]
    fn accept_errors() {
        for e in [
            sys::EINTR,
            sys::ECONNABORTED,
            sys::EPERM,
            sys::EPROTO,
            sys::ENETDOWN,
            sys::ENOPROTOOPT,
            sys::EHOSTDOWN,
            sys::ENONET,
            sys::EHOSTUNREACH,
            sys::EOPNOTSUPP,
            sys::ENETUNREACH,
        ] {
            assert!(accept_error_retried(e), "{}", e);
        }
        for e in [
            sys::EMFILE,
            sys::ENFILE,
            sys::ENOBUFS,
            sys::ENOMEM,
            sys::EINVAL,
            sys::EBADF,
        ] {
            assert!(!accept_error_retried(e), "{}", e);
        }
    }

    #[test]
    fn bad_arguments() {
        assert!(parse(&["--port"]).is_err());
        assert!(parse(&["--port", "65536"]).is_err());
        assert!(parse(&["--port", "-1"]).is_err());
        assert!(parse(&["--host", "localhost"]).is_err());
        assert!(parse(&["--host", "::1"]).is_err());
        assert!(parse(&["--verbose"]).is_err());
        assert!(parse(&["8000"]).is_err());
    }
}
