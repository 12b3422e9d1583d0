//! Ctrl-C and SIGTERM as a counter the tools poll: the first asks them to clean up what they
//! started and stop; the second stops waiting for the clean-up (as cargo-nextest does).

use std::sync::atomic::{AtomicUsize, Ordering};

static RECEIVED: AtomicUsize = AtomicUsize::new(0);
static TERMS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only atomic increments: async-signal-safe.
    RECEIVED.fetch_add(1, Ordering::SeqCst);
    if sig == libc::SIGTERM {
        TERMS.fetch_add(1, Ordering::SeqCst);
    }
}

/// Installs the handlers for SIGINT and SIGTERM. Call once, before starting anything that
/// must be cleaned up.
pub fn install() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only touches an atomic.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// How many interrupts arrived since start.
pub fn count() -> usize {
    RECEIVED.load(Ordering::SeqCst)
}

/// How many of them were SIGTERM (sent to this process alone, unlike a terminal's Ctrl-C,
/// which reaches the whole foreground process group).
pub fn terms() -> usize {
    TERMS.load(Ordering::SeqCst)
}

/// True once at least one interrupt arrived.
pub fn requested() -> bool {
    count() > 0
}
