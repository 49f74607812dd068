//! Ports of the host's loopback for a server a test starts (a published port, a socket a
//! launcher listens on for the program).
//!
//! A port that was free when the test picked it (bound and released) may be bound by anything
//! on the machine before the test's server binds it: other tests run meanwhile, in this process
//! and in others. So a test starts its server through [`on_a_free_port`], which tries again with
//! another port when, and only when, the server could not start because someone else holds its
//! port.

use std::io::ErrorKind;
use std::net::TcpListener;

/// How many ports a test tries before it fails: each retry needs another program to have taken
/// the port picked in the moment before, so a few are plenty.
const TRIES: usize = 5;

/// A TCP port of the host's loopback that was free just now (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Is `port` of the host's loopback bound by someone now?
pub fn in_use(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_err_and(|e| e.kind() == ErrorKind::AddrInUse)
}

/// Starts a server on a free port: `start(port)` returns what it started, or why the server
/// did not start (its status and what it said). A failure is retried with another port when the
/// port is in use by then (someone took it between the pick and the server's bind); any other
/// failure fails the test with `start`'s reason.
pub fn on_a_free_port<T>(mut start: impl FnMut(u16) -> Result<T, String>) -> (T, u16) {
    let mut taken = Vec::new();
    for _ in 0..TRIES {
        let port = free_port();
        match start(port) {
            Ok(t) => return (t, port),
            Err(why) if in_use(port) => taken.push((port, why)),
            Err(why) => panic!("the server on port {port} did not start: {why}"),
        }
    }
    panic!("every port picked was taken before the server could bind it: {taken:?}");
}
