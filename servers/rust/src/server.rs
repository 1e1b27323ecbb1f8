//! Start-up shared by both servers: arguments, limits, signals, the listening socket.

use crate::sys;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::io::RawFd;

pub const DEFAULT_HOST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
pub const DEFAULT_PORT: u16 = 8000;
pub const BACKLOG: i32 = 4096;

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
    pub signals: RawFd,
    pub host: Ipv4Addr,
    pub port: u16,
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

    let signals = sys::block_into_signalfd(&[sys::SIGTERM, sys::SIGINT])
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
        signals,
        host: Ipv4Addr::from(ip),
        port,
    }
}

/// The one line that tells the world the server is ready.
pub fn announce(s: &Startup) {
    let out = std::io::stdout();
    let mut out = out.lock();
    // If stdout is gone nobody is waiting for the line; keep serving anyway.
    let _ = writeln!(out, "listening on {}:{}", s.host, s.port);
    let _ = out.flush();
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
