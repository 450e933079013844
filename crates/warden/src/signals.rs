//! Graceful shutdown on SIGTERM and SIGINT (ctrl-c), without a signal handler: both signals
//! are blocked in every thread (the mask is inherited, so this runs before any thread is
//! started) and one thread takes them with `sigwait`, then calls the shutdown callback.

use std::io;

/// Blocks SIGTERM and SIGINT in this thread (and the threads it starts from now on) and starts
/// a thread that calls `on_signal` with the signal's name when one arrives.
pub fn on_termination(on_signal: impl Fn(&'static str) + Send + 'static) -> io::Result<()> {
    #[allow(unsafe_code, reason = "libc's signal-set calls: there is no safe std API for them")]
    // SAFETY: `set` is a properly sized, initialised-by-sigemptyset `sigset_t` owned by this
    // frame; the calls only read and write it and the thread's signal mask.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        set
    };
    std::thread::Builder::new().name("signals".into()).spawn(move || loop {
        let mut sig: libc::c_int = 0;
        #[allow(unsafe_code, reason = "sigwait has no safe std API")]
        // SAFETY: `set` is a valid signal set (built above and moved here), `sig` a valid
        // out-parameter; sigwait only reads the one and writes the other.
        let rc = unsafe { libc::sigwait(&set, &mut sig) };
        if rc != 0 {
            continue;
        }
        on_signal(if sig == libc::SIGTERM { "SIGTERM" } else { "SIGINT" });
    })?;
    Ok(())
}
