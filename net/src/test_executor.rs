//! Runs a test's async body on a real glommio executor (its own thread), the way a shard would.

use std::future::Future;

pub(crate) fn run<G, F, T>(make: G) -> T
where
    G: FnOnce() -> F + Send + 'static,
    F: Future<Output = T> + 'static,
    T: Send + 'static,
{
    glommio::LocalExecutorBuilder::default()
        // 64 KiB of io_uring registered memory: starts under a non-root 8 MiB memlock limit.
        .io_memory(64 << 10)
        .spawn(make)
        .expect("start glommio executor")
        .join()
        .expect("join glommio executor")
}
