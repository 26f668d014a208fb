//! The gRPC health reply reader (HTTP/2 frames, HPACK, the protobuf answer), fed the bytes a
//! server would send, in reads of a size the input picks; what it writes back is discarded.
#![no_main]

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use cpra_net::grpc::judge_stream;
use futures_lite::{AsyncRead, AsyncWrite};
use libfuzzer_sys::fuzz_target;

/// A server that sends `data` in reads of at most `step` bytes, then closes.
struct Replay<'a> {
    data: &'a [u8],
    step: usize,
    written: usize,
}

impl AsyncRead for Replay<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let n = buf.len().min(self.step).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for Replay<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.written += buf.len();
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, data)) = data.split_first() else { return };
    let mut server = Replay { data, step: usize::from(step).max(1), written: 0 };
    let outcome = futures_lite::future::block_on(judge_stream(&mut server));
    // Whatever the reads' sizes, the same bytes give the same outcome.
    let mut whole = Replay { data, step: usize::MAX, written: 0 };
    let again = futures_lite::future::block_on(judge_stream(&mut whole));
    assert_eq!(format!("{outcome:?}"), format!("{again:?}"));
    // Only SETTINGS ACKs (9 bytes) and PING ACKs (17) are written, one per frame read.
    assert!(server.written <= data.len() / 9 * 17 + 17);
});
