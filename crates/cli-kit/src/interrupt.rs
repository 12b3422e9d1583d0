//! Ctrl-C and SIGTERM as a counter the tools poll: the first asks them to clean up what they
//! started and stop; the second stops waiting for the clean-up (as cargo-nextest does).
//!
//! Signals arriving within 300 ms of the previous one count once: a terminal's Ctrl-C reaches
//! the whole foreground process group, so a wrapper that also forwards it (the Heroku CLI
//! plugin, npm) delivers the same keypress twice.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

static RECEIVED: AtomicUsize = AtomicUsize::new(0);
static TERMS: AtomicUsize = AtomicUsize::new(0);
static SENT_INTS: AtomicUsize = AtomicUsize::new(0);
static LAST_MS: AtomicU64 = AtomicU64::new(0);
static HANGUPS: AtomicUsize = AtomicUsize::new(0);

const SAME_KEYPRESS_MS: u64 = 300;

fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime is async-signal-safe and writes into a valid timespec.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // Only atomics, a field read and clock_gettime: async-signal-safe.
    // SAFETY: the kernel passes a valid siginfo_t with SA_SIGINFO.
    let sent = !info.is_null() && sent_by_a_process(unsafe { (*info).si_code });
    // A terminal's Ctrl-C comes from the kernel and reaches the whole foreground process
    // group; one sent with kill(2) reaches this process only.
    if sig == libc::SIGINT && sent {
        SENT_INTS.fetch_add(1, Ordering::SeqCst);
    }
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

/// Whether a signal's `si_code` says another process sent it with kill(2), not the kernel (a
/// terminal's Ctrl-C). The codes differ by system: on Linux SI_USER and its kin are ≤ 0 and the
/// kernel's SI_KERNEL is positive; on macOS (Darwin's <sys/signal.h>) SI_USER is 0x10001 and a
/// terminal's signal carries 0.
#[cfg(target_os = "linux")]
fn sent_by_a_process(code: libc::c_int) -> bool {
    code <= 0
}

#[cfg(not(target_os = "linux"))]
fn sent_by_a_process(code: libc::c_int) -> bool {
    const DARWIN_SI_USER: libc::c_int = 0x10001;
    code == DARWIN_SI_USER
}

/// Installs the handlers for SIGINT and SIGTERM. Call once, before starting anything that
/// must be cleaned up.
pub fn install() {
    // SAFETY: a zeroed sigaction with a valid SA_SIGINFO handler that only touches atomics.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction =
            on_signal as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut());
    }
}

extern "C" fn on_hangup(_sig: libc::c_int) {
    HANGUPS.fetch_add(1, Ordering::SeqCst);
}

/// Installs a SIGHUP handler: a closed terminal is not a request to stop what runs on the
/// platform (a detached migration goes on); the tool stops following and says how to resume.
pub fn install_hangup() {
    // SAFETY: a zeroed sigaction whose handler only touches an atomic.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_hangup as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGHUP, &action, std::ptr::null_mut());
    }
}

/// True once the terminal hung up (SIGHUP).
pub fn hung_up() -> bool {
    HANGUPS.load(Ordering::SeqCst) > 0
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

/// How many SIGINTs were sent to this process alone (with kill(2), not from a terminal). A
/// wrapper forwards these; a terminal's Ctrl-C has already reached its children.
pub fn sent_ints() -> usize {
    SENT_INTS.load(Ordering::SeqCst)
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
        assert_eq!(sent_ints(), 2, "raise() is a user-sent signal, not a terminal's");
        std::thread::sleep(std::time::Duration::from_millis(SAME_KEYPRESS_MS + 50));
        // SAFETY: as above.
        unsafe {
            libc::raise(libc::SIGTERM);
        }
        assert_eq!((count(), terms()), (2, 1));
    }
}
