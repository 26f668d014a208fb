//! The DNS reply reader: a datagram is judged (or skipped as a stray) without a panic, and
//! one judged is a reply to our id, whatever record type is asked and whatever `expect` is
//! compared (the answer walk follows compression pointers for names, bounded).
//! `/etc/resolv.conf` parsing rides along (text input).
#![no_main]

use cpra_net::dns::{judge_datagram, parse_resolv_conf, DnsConfig, DnsRecord};
use libfuzzer_sys::fuzz_target;

/// An `expect` of the right shape for each record type.
fn expect_for(record: DnsRecord) -> &'static str {
    match record {
        DnsRecord::A => "192.0.2.1",
        DnsRecord::Aaaa => "2001:db8::1",
        DnsRecord::Txt => "v=spf1",
        _ => "a.example",
    }
}

fuzz_target!(|data: &[u8]| {
    let id = data.get(..2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    let server = "127.0.0.1:53".parse().unwrap();
    // The last byte picks the record type and whether an `expect` is compared.
    let pick = data.last().copied().unwrap_or(0);
    let record = DnsRecord::ALL[usize::from(pick & 0x7) % DnsRecord::ALL.len()];
    let mut cfg = DnsConfig::new(server, "a.example", record).unwrap();
    if pick & 0x8 != 0 {
        cfg = cfg.with_expect(expect_for(record)).unwrap();
    }
    let outcome = judge_datagram(&cfg, data, id);
    if outcome.is_some() {
        // The QR bit says "response"; a query (QR clear) is always a stray.
        assert!(data.len() >= 12 && data[2] & 0x80 != 0);
    }
    // Another id: always a stray.
    assert!(judge_datagram(&cfg, data, id.wrapping_add(1)).is_none());
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_resolv_conf(text);
    }
});
