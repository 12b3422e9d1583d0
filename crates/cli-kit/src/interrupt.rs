//! Ctrl-C and SIGTERM as a counter the tools poll: the first asks them to clean up what they
//! started and stop; the second stops waiting for the clean-up (as cargo-nextest does).
//!
//! Signals arriving within 300 ms of the previous one count once: a terminal's Ctrl-C reaches
//! the whole foreground process group, so a wrapper that also forwards it (the Heroku CLI
//! plugin, npm) delivers the same keypress twice.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

static RECEIVED: AtomicUsize = AtomicUsize::new(0);
static TERMS: AtomicUsize = AtomicUsize::new(0);
static LAST_MS: AtomicU64 = AtomicU64::new(0);

const SAME_KEYPRESS_MS: u64 = 300;

fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime is async-signal-safe and writes into a valid timespec.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

extern "C" fn on_signal(sig: libc::c_int) {
    // Only atomics and clock_gettime: async-signal-safe.
    let now = monotonic_ms();
    let last = LAST_MS.swap(now, Ordering::SeqCst);
    if last != 0 && now.saturating_sub(last) < SAME_KEYPRESS_MS {
        return;
    }
    RECEIVED.fetch_add(1, Ordering::SeqCst);
    if sig == libc::SIGTERM {
        TERMS.fetch_add(1, Ordering::SeqCst);
    }
}

/// Installs the handlers for SIGINT and SIGTERM. Call once, before starting anything that
/// must be cleaned up.
pub fn install() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only touches atomics and the monotonic clock.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// How many interrupts arrived since start (a burst counts once).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_counts_once_and_a_later_signal_counts_again() {
        install();
        // SAFETY: raising a signal at ourselves with our handler installed.
        unsafe {
            libc::raise(libc::SIGINT);
            libc::raise(libc::SIGINT);
        }
        assert_eq!(count(), 1, "two deliveries of one keypress count once");
        std::thread::sleep(std::time::Duration::from_millis(SAME_KEYPRESS_MS + 50));
        // SAFETY: as above.
        unsafe {
            libc::raise(libc::SIGTERM);
        }
        assert_eq!((count(), terms()), (2, 1));
    }
}
