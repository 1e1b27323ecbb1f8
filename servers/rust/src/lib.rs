//! Code shared by the Rust benchmark servers (`src/bin/epoll.rs`, `src/bin/io_uring.rs`):
//! request framing and the static response buffer, start-up, and the system interfaces,
//! declared directly against libc because no crates are used.

pub mod http;
pub mod server;
pub mod sys;
pub mod uring;
