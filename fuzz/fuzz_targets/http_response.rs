//! The HTTP/1.1 response head parser and the in-place chunked decoder. A parsed head never
//! claims more bytes than it was given; a chunked body decodes the same whether its bytes
//! arrive at once or in two pieces, and the decoder never reports more than it consumed.
#![no_main]

use cpra_net::http_response::{dechunk, parse_head, Dechunked, Framing};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First byte: where to split the chunked body (resumed decoding) and whether a HEAD.
    let Some((&ctl, data)) = data.split_first() else { return };
    for head_request in [false, true] {
        match parse_head(data, head_request) {
            Ok(Some(head)) => {
                assert!(head.len <= data.len(), "head longer than its input");
                assert!(head.len > 0);
                if head_request {
                    assert_eq!(head.framing, Framing::Empty);
                }
                if head.framing == Framing::Chunked {
                    chunked(&data[head.len..], usize::from(ctl));
                }
            }
            Ok(None) => {
                // Incomplete: any prefix is incomplete too (or already invalid).
                let cut = usize::from(ctl).min(data.len());
                assert!(!matches!(parse_head(&data[..cut], head_request), Ok(Some(_))));
            }
            Err(_) => {}
        }
    }
    chunked(data, usize::from(ctl));
});

fn chunked(body: &[u8], split: usize) {
    let mut whole = body.to_vec();
    let at_once = dechunk(&mut whole, 0, 0);
    if let Ok(d) = at_once {
        sane(d, whole.len());
    }
    // The same bytes in two reads: the first part decoded, then resumed on the whole.
    let split = split.min(body.len());
    let mut pieces = body.to_vec();
    let resumed = match dechunk(&mut pieces[..split], 0, 0) {
        Ok(first) if first.complete => Ok(first),
        Ok(first) => {
            sane(first, split);
            dechunk(&mut pieces, first.consumed, first.body_len)
        }
        Err(e) => Err(e),
    };
    match (at_once, resumed) {
        (Ok(a), Ok(b)) => {
            sane(b, pieces.len());
            assert_eq!(a, b, "resumed decoding differs");
            assert_eq!(whole[..a.body_len], pieces[..b.body_len]);
        }
        (Err(_), Err(_)) => {}
        (a, b) => panic!("at once {a:?}, resumed {b:?}"),
    }
}

fn sane(d: Dechunked, len: usize) {
    assert!(d.body_len <= d.consumed && d.consumed <= len, "{d:?} over {len} bytes");
}
