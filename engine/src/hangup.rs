//! SIGHUP: caught, so that a hangup (a closed terminal, `kill -HUP`, a service manager's
//! "reload") never ends the process with checks and alerts in flight.
//!
//! What it is for: a hangup is noted and the main loop of `cpra run` reloads the manifest
//! (`reload`); `cpra demo`, whose fleet comes from no file, logs that it cannot and goes on. The
//! handler only sets a flag (async-signal-safe, as for SIGINT/SIGTERM in `runtime`); the
//! main thread reads it. What it is not for: stopping (SIGINT/SIGTERM do that).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// Set by the handler, cleared by [`take`]. One per process: the disposition of a signal is.
static HANGUP: OnceLock<Result<Arc<AtomicBool>, String>> = OnceLock::new();

/// Installs the handler (once per process; later calls return the first result).
pub fn catch() -> Result<(), String> {
    HANGUP
        .get_or_init(|| {
            let flag = Arc::new(AtomicBool::new(false));
            signal_hook::flag::register(signal_hook::consts::SIGHUP, flag.clone())
                .map(|_| flag)
                .map_err(|e| format!("cannot install a SIGHUP handler: {e}"))
        })
        .as_ref()
        .map(|_| ())
        .map_err(Clone::clone)
}

/// Whether a SIGHUP arrived since the last call.
pub fn take() -> bool {
    match HANGUP.get() {
        Some(Ok(flag)) => flag.swap(false, Ordering::Relaxed),
        _ => false,
    }
}

/// What the main loop logs on a hangup.
pub const NOT_SUPPORTED: &str =
    "SIGHUP received: this fleet was not loaded from a manifest file, so there is nothing to reload";
