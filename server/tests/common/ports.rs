//! Ports for test nodes.
//!
//! Binding port 0 and releasing it races: until the child binds it, the kernel may hand
//! the same port to another test's node or use it as the source port of an outgoing
//! connection. So ports come from below Linux's ephemeral range (32768-60999), are never
//! handed out twice by this process, and are checked to be bindable.

use std::sync::atomic::{AtomicU32, Ordering};

const FIRST: u32 = 20_000;
const LAST: u32 = 32_000;

static NEXT: AtomicU32 = AtomicU32::new(0);

pub fn free_port() -> u16 {
    // Start each test process elsewhere in the range, so parallel test binaries rarely meet.
    let _ = NEXT.compare_exchange(
        0,
        FIRST + (std::process::id() * 7919) % (LAST - FIRST),
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in FIRST..LAST {
        let candidate = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = FIRST + (candidate - FIRST) % (LAST - FIRST);
        let port = u16::try_from(port).expect("ports are below 32000");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {FIRST} and {LAST}");
}
