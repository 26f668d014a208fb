//! `cpra-net`: the client side of every CPRA pulse (tcp, http/https, tls, icmp, dns, udp, grpc,
//! docker), run on the calling glommio shard's io_uring sockets.
//!
//! What it is for: one bounded check per call, ending in an [`Outcome`]; never blocking the
//! shard thread; every byte read bounded. What it is not for: scheduling, state, alerting
//! (that is `cpra-engine`), or name resolution on a shard thread (callers hand in addresses
//! already resolved).

pub mod conn;
pub mod deadline;
pub mod http;
pub mod http_response;
pub mod limits;
pub mod outcome;
pub mod tcp;
#[cfg(test)]
mod test_executor;
#[cfg(test)]
mod test_server;
pub mod tls;
pub mod tlscheck;

pub use deadline::Deadline;
pub use outcome::{Detail, FailureKind, Outcome, Warning};
pub mod dns;
pub mod docker;
pub mod grpc;
pub mod icmp;
pub mod resolver;
pub mod retry;
pub mod udp;
pub mod unix_http;
