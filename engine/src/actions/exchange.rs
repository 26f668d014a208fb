//! One HTTP/1.1 request over the Docker engine's unix socket, answered with its status.
//! (TCP and TLS requests go through cpra-net's `HttpClient` instead.)

use std::path::Path;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::UnixStream;

/// Response head bytes accepted: the engine sends a few short headers; 16 KiB is the bound
/// every CPRA probe uses. Past it the exchange fails (after the request was sent: unknown).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// How far an exchange got before it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExchangeError {
    /// Connecting or writing failed: the server did not get the request.
    NotSent(String),
    /// The request went out; no parsable answer came back.
    AfterSent(String),
}

/// Sends `request` (complete, `Connection: close`) on a new connection to `socket` and returns
/// the response status. The body is not read.
pub async fn unix_request(socket: &Path, request: &[u8]) -> Result<u16, ExchangeError> {
    let mut stream = UnixStream::connect(socket)
        .await
        .map_err(|e| ExchangeError::NotSent(format!("connect to {}: {e}", socket.display())))?;
    stream
        .write_all(request)
        .await
        .map_err(|e| ExchangeError::NotSent(format!("write to {}: {e}", socket.display())))?;
    let mut buf = vec![0u8; MAX_HEAD_BYTES];
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            return Err(ExchangeError::AfterSent("response head too large".into()));
        }
        let n = stream
            .read(&mut buf[filled..])
            .await
            .map_err(|e| ExchangeError::AfterSent(format!("reading the response: {e}")))?;
        if n == 0 {
            return Err(ExchangeError::AfterSent("connection closed before the response".into()));
        }
        filled += n;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf[..filled]) {
            Ok(httparse::Status::Complete(_)) => {
                return response
                    .code
                    .ok_or_else(|| ExchangeError::AfterSent("response without a status".into()))
            }
            Ok(httparse::Status::Partial) => continue,
            Err(e) => return Err(ExchangeError::AfterSent(format!("bad response: {e}"))),
        }
    }
}
