//! What this kernel's io_uring offers CPRA, probed with the `io-uring` crate (glommio keeps
//! its own ring code private): whether a ring can be set up at all, which of the opcodes
//! glommio submits are there, the features it relies on, whether SQPOLL and registered
//! buffers work, and the locked memory a shard's rings and buffers take.
//!
//! What it is for: `cpra tune`'s io_uring lines. What it is not for: running I/O (glommio).

use io_uring::{opcode, IoUring, Probe};

/// The opcodes glommio 0.9 submits (its `sys/uring.rs`), by name, with what CPRA uses them
/// for: a missing one fails that kind of I/O.
pub const OPCODES_USED: &[(&str, u8, &str)] = &[
    ("NOP", opcode::Nop::CODE, "ring wake-ups"),
    ("READ", opcode::Read::CODE, "files"),
    ("WRITE", opcode::Write::CODE, "the journal"),
    ("READ_FIXED", opcode::ReadFixed::CODE, "files"),
    ("WRITE_FIXED", opcode::WriteFixed::CODE, "the journal"),
    ("FSYNC", opcode::Fsync::CODE, "the journal's commits"),
    ("FALLOCATE", opcode::Fallocate::CODE, "journal segments"),
    ("OPENAT", opcode::OpenAt::CODE, "journal segments"),
    ("CLOSE", opcode::Close::CODE, "every descriptor"),
    ("STATX", opcode::Statx::CODE, "files"),
    ("CONNECT", opcode::Connect::CODE, "every check"),
    ("ACCEPT", opcode::Accept::CODE, "the demo's servers"),
    ("SEND", opcode::Send::CODE, "requests"),
    ("RECV", opcode::Recv::CODE, "replies"),
    ("SENDMSG", opcode::SendMsg::CODE, "udp and icmp checks"),
    ("RECVMSG", opcode::RecvMsg::CODE, "udp and icmp checks"),
    ("POLL_ADD", opcode::PollAdd::CODE, "readiness"),
    ("POLL_REMOVE", opcode::PollRemove::CODE, "readiness"),
    ("TIMEOUT", opcode::Timeout::CODE, "timers"),
    ("TIMEOUT_REMOVE", opcode::TimeoutRemove::CODE, "timers"),
    ("LINK_TIMEOUT", opcode::LinkTimeout::CODE, "check deadlines"),
    ("ASYNC_CANCEL", opcode::AsyncCancel::CODE, "abandoned checks"),
];

/// What the probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UringFacts {
    /// `Err`: io_uring_setup failed (why).
    pub setup: Result<(), String>,
    /// Each used opcode and whether the kernel has it.
    pub opcodes: Vec<(&'static str, bool)>,
    /// Opcodes the kernel has in all (of those the probe knows).
    pub supported: usize,
    pub features: Vec<(&'static str, bool)>,
    pub sqpoll: Result<(), String>,
    pub registered_buffers: Result<(), String>,
    /// Bytes of one ring of the probed depth (submission and completion queues, the index
    /// array): locked memory on kernels before 5.12, memory-cgroup memory after.
    pub ring_bytes: u64,
}

impl UringFacts {
    /// No ring could be set up, for `why`.
    pub fn unavailable(why: String) -> UringFacts {
        UringFacts {
            setup: Err(why.clone()),
            opcodes: Vec::new(),
            supported: 0,
            features: Vec::new(),
            sqpoll: Err(why.clone()),
            registered_buffers: Err(why),
            ring_bytes: 0,
        }
    }
}

/// Probes io_uring with rings of `ring_depth` entries and a registered buffer of
/// `io_memory` bytes (what a shard registers).
pub fn probe(ring_depth: u32, io_memory: usize) -> UringFacts {
    let ring: IoUring = match IoUring::new(ring_depth) {
        Ok(ring) => ring,
        Err(e) => {
            return UringFacts::unavailable(e.to_string());
        }
    };
    let mut probe = Probe::new();
    let opcodes_known = ring.submitter().register_probe(&mut probe).is_ok();
    let opcodes = OPCODES_USED
        .iter()
        .map(|&(name, code, _)| (name, opcodes_known && probe.is_supported(code)))
        .collect();
    let supported = (0..=u8::MAX).filter(|&c| opcodes_known && probe.is_supported(c)).count();
    let p = ring.params();
    let features = vec![
        ("single mmap", p.is_feature_single_mmap()),
        ("nodrop", p.is_feature_nodrop()),
        ("submit stable", p.is_feature_submit_stable()),
        ("fast poll", p.is_feature_fast_poll()),
        ("ext arg", p.is_feature_ext_arg()),
        ("native workers", p.is_feature_native_workers()),
    ];
    let ring_bytes = u64::from(p.sq_entries()) * (64 + 4) + u64::from(p.cq_entries()) * 16;
    let sqpoll = IoUring::<io_uring::squeue::Entry, io_uring::cqueue::Entry>::builder()
        .setup_sqpoll(1000)
        .build(8)
        .map(|_| ())
        .map_err(|e| e.to_string());
    let registered_buffers = register_buffer(&ring, io_memory);
    UringFacts {
        setup: Ok(()),
        opcodes,
        supported,
        features,
        sqpoll,
        registered_buffers,
        ring_bytes,
    }
}

/// Registers (and unregisters) one buffer of `bytes`, as a shard does with its io_memory.
fn register_buffer(ring: &IoUring, bytes: usize) -> Result<(), String> {
    let mut buffer = vec![0u8; bytes.max(4096)];
    let iov = libc::iovec { iov_base: buffer.as_mut_ptr().cast(), iov_len: buffer.len() };
    // SAFETY: the buffer lives until after it is unregistered below, and nothing else
    // touches it meanwhile (no I/O is submitted on this ring).
    let result = unsafe { ring.submitter().register_buffers(&[iov]) };
    match result {
        Ok(()) => {
            let _ = ring.submitter().unregister_buffers();
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// glommio refuses to start a shard under this `RLIMIT_MEMLOCK` (its own check).
pub const GLOMMIO_MEMLOCK_MINIMUM: u64 = 512 << 10;

/// A transparent huge page: a registered buffer inside one pins (and is charged) the whole
/// page.
pub const HUGE_PAGE_BYTES: u64 = 2 << 20;

/// The locked memory (`RLIMIT_MEMLOCK`) `shards` shards need for their registered buffers:
/// each shard registers its io_memory with each of its three rings and the kernel charges
/// every registration; a buffer the allocator placed in a transparent huge page is charged
/// the whole page (`huge_pages`: THP is not `never`); before 5.12 the rings count too.
/// Measured (VmPin of `cpra run`): 192 KiB a shard without huge pages, 6 MiB with them.
pub fn memlock_needed(
    shards: u64,
    io_memory: u64,
    ring_bytes: u64,
    kernel: (u32, u32),
    huge_pages: bool,
) -> u64 {
    let buffer = if huge_pages { io_memory.next_multiple_of(HUGE_PAGE_BYTES) } else { io_memory };
    let rings_locked = if kernel < (5, 12) { 3 * ring_bytes } else { 0 };
    GLOMMIO_MEMLOCK_MINIMUM.max(shards.saturating_mul(3 * buffer + rings_locked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memlock_counts_every_registration_and_old_kernels_rings() {
        // Two shards of 64 KiB: under glommio's own floor.
        assert_eq!(memlock_needed(2, 64 << 10, 10_000, (6, 1), false), 512 << 10);
        // 64 shards: 3 registrations each.
        assert_eq!(memlock_needed(64, 64 << 10, 10_000, (6, 1), false), 64 * 3 * (64 << 10));
        // In huge pages, each registration is charged a whole one (6 MiB a shard, as measured).
        assert_eq!(memlock_needed(2, 64 << 10, 10_000, (6, 1), true), 2 * 3 * (2 << 20));
        // Before 5.12 the rings count too.
        assert_eq!(
            memlock_needed(64, 64 << 10, 10_000, (5, 4), false),
            64 * (3 * (64 << 10) + 30_000)
        );
    }

    #[test]
    fn this_kernel_is_probed_without_failing() {
        // Whatever this machine allows (a container may forbid io_uring): the probe says so
        // instead of failing.
        let facts = probe(8, 64 << 10);
        if facts.setup.is_ok() {
            assert_eq!(facts.opcodes.len(), OPCODES_USED.len());
            assert!(facts.ring_bytes > 0);
        }
    }
}
