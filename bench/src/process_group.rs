//! Servers a benchmark starts (nginx, blackbox_exporter), each in its own process group, so
//! that stopping one stops every process it forked too: nginx's master forks its workers, and
//! killing the master alone (what `Child::kill` does) leaves the workers running, each using
//! CPU, after the benchmark ends.
//!
//! A group is stopped when its [`Group`] is dropped, and also when the benchmark is stopped by
//! SIGINT or SIGTERM (a server in its own group does not get the terminal's Ctrl-C): the
//! signal handler kills every group still registered, then exits.

use std::process::{Child, Command};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// Groups alive at once: a benchmark runs a target and one peer at a time.
const MAX_GROUPS: usize = 8;

/// How long a server may take to exit after SIGTERM (nginx's master stops its workers and
/// waits for them) before its whole group is killed.
const TERM_WAIT: Duration = Duration::from_secs(5);

/// The process group ids to kill from the signal handler; 0 is a free slot.
static GROUPS: [AtomicI32; MAX_GROUPS] = [const { AtomicI32::new(0) }; MAX_GROUPS];

/// A started server, the leader of its own process group.
pub struct Group {
    child: Child,
    pgid: libc::pid_t,
}

impl Group {
    /// Spawns `cmd` as the leader of a new process group.
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Group> {
        use std::os::unix::process::CommandExt;
        install_signal_handler();
        let child = cmd.process_group(0).spawn()?;
        let pgid = child.id() as libc::pid_t;
        let free =
            |s: &AtomicI32| s.compare_exchange(0, pgid, Ordering::SeqCst, Ordering::SeqCst).is_ok();
        if !GROUPS.iter().any(free) {
            eprintln!("more than {MAX_GROUPS} servers at once: group {pgid} not killed on Ctrl-C");
        }
        Ok(Group { child, pgid })
    }

    /// The leader's pid (e.g. to read its CPU time from /proc).
    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // SIGTERM first: nginx's master then stops its workers and waits for them.
        // SAFETY: kill(2) takes no pointers; a negative pid names our child's own group.
        unsafe { libc::kill(-self.pgid, libc::SIGTERM) };
        let until = Instant::now() + TERM_WAIT;
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Whatever is left of the group (a worker that outlived its master, a master that
        // ignored SIGTERM) is killed; ESRCH when nothing is left is fine.
        // SAFETY: as above.
        unsafe { libc::kill(-self.pgid, libc::SIGKILL) };
        let _ = self.child.wait();
        for slot in &GROUPS {
            let _ = slot.compare_exchange(self.pgid, 0, Ordering::SeqCst, Ordering::SeqCst);
        }
    }
}

extern "C" fn on_signal(signal: libc::c_int) {
    for slot in &GROUPS {
        let pgid = slot.load(Ordering::SeqCst);
        if pgid > 0 {
            // SAFETY: kill(2) is async-signal-safe and takes no pointers.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
    // SAFETY: _exit(2) is async-signal-safe; the usual 128 + signal exit status.
    unsafe { libc::_exit(128 + signal) };
}

fn install_signal_handler() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: `on_signal` only calls async-signal-safe functions (atomic loads, kill,
            // _exit), as a handler must.
            unsafe {
                libc::signal(signal, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t)
            };
        }
    });
}
