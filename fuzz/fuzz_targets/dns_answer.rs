//! The DNS reply reader: a datagram is judged (or skipped as a stray) without a panic, and
//! one judged is a reply to our id. `/etc/resolv.conf` parsing rides along (text input).
#![no_main]

use cpra_net::dns::{judge_datagram, parse_resolv_conf};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let id = data.get(..2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    let outcome = judge_datagram(data, id);
    if outcome.is_some() {
        // The QR bit says "response"; a query (QR clear) is always a stray.
        assert!(data.len() >= 12 && data[2] & 0x80 != 0);
    }
    // Another id: always a stray.
    assert!(judge_datagram(data, id.wrapping_add(1)).is_none());
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_resolv_conf(text);
    }
});
