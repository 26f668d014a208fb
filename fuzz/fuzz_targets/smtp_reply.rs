//! SMTP reply reading, as the mail sender reads a server: replies one after another from the
//! bytes, in reads of a size the input picks. A reply is never longer than the reply bound.
#![no_main]

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use cpra_engine::actions::smtp::read_reply;
use cpra_engine::limits::MAX_SMTP_REPLY_BYTES;
use futures_lite::AsyncRead;
use libfuzzer_sys::fuzz_target;

struct Replay<'a> {
    data: &'a [u8],
    step: usize,
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

fuzz_target!(|data: &[u8]| {
    let Some((&step, data)) = data.split_first() else { return };
    let mut server = Replay { data, step: usize::from(step).max(1) };
    let mut buf = Vec::new();
    // Each Ok reply consumes at least one line (one byte), so this ends.
    for _ in 0..=data.len() {
        match futures_lite::future::block_on(read_reply(&mut server, &mut buf)) {
            Ok((code, text)) => {
                assert!((0..1000).contains(&code));
                assert!(text.len() <= MAX_SMTP_REPLY_BYTES, "reply of {} bytes", text.len());
                assert!(text.ends_with('\n'));
            }
            Err(_) => return,
        }
        assert!(buf.len() <= MAX_SMTP_REPLY_BYTES + 1024);
    }
    panic!("more replies than bytes");
});
