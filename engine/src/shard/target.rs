//! Where a pulse is aimed: the host to resolve, and how to turn the resolved address into a
//! `cpra-net` check config.
//!
//! What it is for: telling a plain check ([`plain`]: tcp, icmp, and http to an `http://` URL
//! without the rare fields), whose config is built per check from the monitor's own config
//! without allocating (the http request rendered into a reused buffer), so a shard keeps
//! nothing per such monitor; and compiling every other check once per resolved address
//! (parsing the URL, rendering the request, building TLS configs), kept by the shard. What it
//! is not for: resolving (the shard's `ShardResolver` does it) or running the check
//! (`Monitors::run_check` in `monitors.rs`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use cpra_net::dns::{system_nameserver, DnsConfig, DnsRecord};
use cpra_net::docker::DockerConfig;
use cpra_net::grpc::GrpcConfig;
use cpra_net::http::{HttpConfig, HttpSpec, PlainHttp, TlsConfigCache};
use cpra_net::icmp::IcmpConfig;
use cpra_net::tcp::TcpConfig;
use cpra_net::tls::TlsOptions;
use cpra_net::tlscheck::TlsCheckConfig;
use cpra_net::udp::UdpConfig;

use crate::actions::target::{Target, TargetRef};
use crate::manifest::{HttpPulse, Pulse};

/// A compiled check, ready to run against one resolved address, and the retries it makes
/// (`PulseCheck::retries_per_check`): http and icmp apply them in their own config, every
/// other type through `cpra_net::retry::with_retries`.
pub struct Compiled {
    pub check: Check,
    pub retries: u32,
}

/// The compiled probe of one pulse type. A shard keeps one per monitor once checked, so the
/// enum is kept to the size of the common pulses' configs (http, tcp, icmp); the others,
/// larger, are boxed (once, at compile, not per check).
pub enum Check {
    Http(HttpConfig<'static>),
    Tcp(TcpConfig),
    Udp(Box<UdpConfig>),
    Dns(Box<DnsConfig>),
    Grpc(Box<GrpcConfig>),
    Tls(Box<TlsCheckConfig>),
    Icmp(IcmpConfig),
    Docker(Box<DockerConfig>),
}

/// A check built per check from its monitor's config, borrowed from the plan: nothing about it
/// is kept between checks.
#[derive(Clone, Copy, Debug)]
pub enum Plain<'a> {
    Tcp { host: &'a str, port: u16 },
    Icmp { host: &'a str, count: u8 },
    Http { url: TargetRef<'a>, pulse: &'a HttpPulse },
}

impl<'a> Plain<'a> {
    /// The host to resolve and the port the check goes to (0 for icmp).
    pub fn host(&self) -> (&'a str, u16) {
        match *self {
            Plain::Tcp { host, port } => (host, port),
            Plain::Icmp { host, .. } => (host, 0),
            Plain::Http { url, .. } => (url.host, url.port),
        }
    }
}

/// `pulse` as a plain check, when it is one: tcp, icmp, or http to an `http://` URL the plan
/// can split without allocating ([`TargetRef::split`]) with none of the rare fields (no TLS,
/// body, body or header assertion, maximum response time, CA file). Every other pulse is
/// compiled ([`compile`]) and kept.
pub fn plain(pulse: &Pulse) -> Option<Plain<'_>> {
    match pulse {
        Pulse::Tcp(t) => Some(Plain::Tcp { host: &t.host, port: t.port }),
        Pulse::Icmp(i) => Some(Plain::Icmp { host: &i.host, count: i.count.clamp(1, 255) as u8 }),
        Pulse::Http(h) if h.extra.is_none() => match TargetRef::split(&h.url) {
            Some(url) if !url.tls => Some(Plain::Http { url, pulse: h }),
            _ => None,
        },
        _ => None,
    }
}

/// The borrowed config of a plain http check against `addr` (see [`PlainHttp`]): the same
/// fields [`http_spec`] gives a compiled one.
pub fn plain_http<'a>(
    url: TargetRef<'a>,
    pulse: &'a HttpPulse,
    addr: SocketAddr,
    retries: u32,
) -> PlainHttp<'a> {
    PlainHttp {
        addr,
        host: url.host,
        method: &pulse.method,
        path: url.path,
        headers: &pulse.headers,
        expected_status: &pulse.expected_status,
        retries,
    }
}

/// The host a pulse needs resolved and the port it goes to, or `None` when nothing is
/// resolved (docker talks to a unix socket).
pub fn host_of(pulse: &Pulse) -> Result<Option<(String, u16)>, String> {
    Ok(match pulse {
        Pulse::Http(h) => {
            let u = Target::parse(&h.url)?;
            Some((u.host, u.port))
        }
        Pulse::Tcp(t) => Some((t.host.clone(), t.port)),
        Pulse::Udp(u) => Some((u.host.clone(), u.port)),
        Pulse::Grpc(g) => Some((g.host.clone(), g.port)),
        Pulse::Tls(t) => Some((t.host.clone(), t.port)),
        Pulse::Icmp(i) => Some((i.host.clone(), 0)),
        // The name looked up is the check itself; what is resolved is the server, below.
        Pulse::Dns(_) => None,
        Pulse::Docker(_) => None,
    })
}

/// What the check is aimed at, as written: the URL or `host:port`. Alerts and logs show
/// `Monitor::shown_target`, this with its secrets masked.
pub fn describe_target(pulse: &Pulse) -> String {
    match pulse {
        Pulse::Http(h) => h.url.clone(),
        Pulse::Tcp(t) => format!("{}:{}", t.host, t.port),
        Pulse::Udp(u) => format!("udp {}:{}", u.host, u.port),
        Pulse::Grpc(g) if g.tls.is_some() => format!("grpcs {}:{}", g.host, g.port),
        Pulse::Grpc(g) => format!("grpc {}:{}", g.host, g.port),
        Pulse::Tls(t) => format!("tls {}:{}", t.host, t.port),
        Pulse::Icmp(i) => format!("icmp {}", i.host),
        Pulse::Dns(d) if d.record_type == DnsRecord::A => format!("dns {}", d.host),
        Pulse::Dns(d) => format!("dns {} {}", d.record_type.as_str(), d.host),
        Pulse::Docker(d) => format!("docker {}", d.container),
    }
}

/// The DNS server a `dns` pulse asks: `server` (`ip` or `ip:port`), else the system's.
pub fn dns_server(server: Option<&str>) -> Result<SocketAddr, String> {
    match server {
        None => system_nameserver(),
        Some(s) => {
            if let Ok(addr) = s.parse::<SocketAddr>() {
                return Ok(addr);
            }
            s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)).map_err(|_| {
                format!("dns server `{s}` must be an IP address, optionally with :port")
            })
        }
    }
}

fn http_spec(h: &HttpPulse, addr: SocketAddr, retries: u32) -> Result<HttpSpec, String> {
    let u = Target::parse(&h.url)?;
    let mut spec = HttpSpec::get(addr, &u.host, &u.path);
    spec.tls = u.tls;
    spec.method = h.method.to_string();
    spec.headers = h.headers.as_ref().clone();
    spec.body = h.body().map(|b| b.as_bytes().to_vec());
    spec.expected_status = h.expected_status.to_vec();
    spec.body_contains = h.body_contains().map(str::to_string);
    spec.body_regex = h.body_regex().map(str::to_string);
    spec.expected_headers = h.expected_headers().to_vec();
    spec.max_response_time = h.max_response_time_ms().map(std::time::Duration::from_millis);
    spec.tls_options = TlsOptions {
        ca_file: h.ca_file().map(PathBuf::from),
        insecure_skip_verify: h.insecure_skip_verify,
    };
    spec.retries = retries;
    Ok(spec)
}

/// Compiles `pulse` for the resolved `addr` (ignored by docker and dns), making `retries`
/// retries inside each check.
pub fn compile(
    pulse: &Pulse,
    addr: Option<SocketAddr>,
    retries: u32,
    tls_cache: &mut TlsConfigCache,
) -> Result<Compiled, String> {
    let check = compile_check(pulse, addr, retries, tls_cache)?;
    Ok(Compiled { check, retries })
}

fn compile_check(
    pulse: &Pulse,
    addr: Option<SocketAddr>,
    retries: u32,
    tls_cache: &mut TlsConfigCache,
) -> Result<Check, String> {
    let need = || addr.ok_or_else(|| "no address resolved".to_string());
    Ok(match pulse {
        Pulse::Http(h) => {
            let spec = http_spec(h, need()?, retries)?;
            Check::Http(HttpConfig::compile(&spec, tls_cache).map_err(|e| e.0)?)
        }
        Pulse::Tcp(_) => Check::Tcp(TcpConfig { addr: need()? }),
        Pulse::Udp(u) => {
            let cfg = UdpConfig::new(need()?, u.payload.as_deref().unwrap_or("").as_bytes())?;
            Check::Udp(Box::new(cfg))
        }
        Pulse::Grpc(g) => {
            let grpc = GrpcConfig::new(need()?, &g.host, g.service.as_deref().unwrap_or(""))?;
            Check::Grpc(Box::new(match &g.tls {
                None => grpc,
                Some(t) => {
                    let opts = TlsOptions {
                        ca_file: t.ca_file.as_deref().map(PathBuf::from),
                        insecure_skip_verify: t.insecure_skip_verify,
                    };
                    let client = tls_cache.get_h2(&opts).map_err(|e| e.0)?;
                    let name = t.server_name.as_deref().unwrap_or(&g.host);
                    // No days-left warning, as for https: the days are reported with each result.
                    grpc.with_tls(&g.host, client, name, None)?
                }
            }))
        }
        Pulse::Tls(t) => {
            let opts = TlsOptions { ca_file: None, insecure_skip_verify: t.insecure_skip_verify };
            // Never resuming: a `tls` check exists to see the certificate every time.
            let client = tls_cache.get_full(&opts).map_err(|e| e.0)?;
            let name = t.server_name.as_deref().unwrap_or(&t.host);
            Check::Tls(Box::new(
                TlsCheckConfig::new(
                    need()?,
                    name,
                    client,
                    t.warn_days.min(i32::MAX as u32) as i32,
                    t.critical_days.min(i32::MAX as u32) as i32,
                )
                .map_err(|e| e.0)?,
            ))
        }
        Pulse::Icmp(i) => {
            let icmp = IcmpConfig::new(need()?.ip(), i.count.clamp(1, 255) as u8)?;
            Check::Icmp(icmp.with_retries(retries))
        }
        Pulse::Dns(d) => {
            let cfg = DnsConfig::new(dns_server(d.server.as_deref())?, &d.host, d.record_type)?;
            Check::Dns(Box::new(match d.expect.as_deref() {
                Some(expect) => cfg.with_expect(expect)?,
                None => cfg,
            }))
        }
        Pulse::Docker(d) => Check::Docker(Box::new(DockerConfig::from_docker_host(
            std::env::var("DOCKER_HOST").ok().as_deref(),
            &d.container,
        )?)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_pulse_resolves_its_url_host_and_port() {
        let yaml = "monitors:\n\
            - name: a\n  pulse_check: {type: http, config: {url: \"https://api.example.com/h?x=1\"}}\n\
            - name: b\n  pulse_check: {type: http, config: {url: \"http://[::1]:9000/a\"}}\n";
        let (monitors, report) =
            crate::manifest::load_str(yaml, None, &crate::manifest::LoadOptions::default());
        assert!(report.is_valid(), "{:?}", report.problems.kept);
        let hosts: Vec<_> =
            monitors.iter().map(|m| host_of(&m.pulse_check.pulse).unwrap().unwrap()).collect();
        assert_eq!(hosts, [("api.example.com".to_string(), 443), ("::1".to_string(), 9000)]);
    }

    /// What `cpra validate` accepts, the engine can run: every pulse of every manifest the
    /// loader calls valid compiles (the runtime's own constructors, against a stand-in
    /// address), so no problem is left for the first check to find.
    #[test]
    fn every_pulse_the_loader_accepts_compiles() {
        use crate::manifest::gen::{parse_mix, write_manifest, GenOptions, GEN_TYPES};
        use crate::manifest::{load_bytes, Format, LoadOptions};
        let example =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/examples/fleet.yaml"));
        let mut manifests = vec![
            crate::manifest::tests::ALL_FIELDS_YAML.as_bytes().to_vec(),
            example.expect("docs/examples/fleet.yaml"),
        ];
        let mix = GEN_TYPES.map(|t| format!("{t}=1")).join(",");
        for (seed, format) in [(1, Format::Yaml), (2, Format::Json)] {
            let opts = GenOptions {
                monitors: 200,
                format,
                targets: vec!["127.0.0.1:9000".into(), "example.com:443".into()],
                mix: parse_mix(&mix).unwrap(),
                interval: "15s".into(),
                seed,
                ..GenOptions::default()
            };
            let mut out = Vec::new();
            write_manifest(&opts, &mut out).unwrap();
            manifests.push(out);
        }
        let mut tls_cache = TlsConfigCache::default();
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut plain_http_checks = 0;
        for bytes in &manifests {
            let mut monitors = Vec::new();
            let opts = LoadOptions::default();
            let report = load_bytes(bytes.clone(), None, "m", &opts, |m| monitors.push(m));
            assert!(report.is_valid(), "{:?}", report.problems.kept);
            assert!(!monitors.is_empty());
            for m in &monitors {
                let pulse = &m.pulse_check.pulse;
                assert!(host_of(pulse).is_ok(), "{}", m.name);
                let retries = m.pulse_check.retries_per_check();
                let compiled = compile(pulse, Some(addr), retries, &mut tls_cache);
                assert!(compiled.is_ok(), "{}: {}", m.name, compiled.err().unwrap_or_default());
                // A plain http check renders per check the request compiled once would send.
                if let (Some(Plain::Http { url, pulse: h }), Check::Http(compiled)) =
                    (plain(pulse), &compiled.unwrap().check)
                {
                    let mut buf = Vec::new();
                    let borrowed = plain_http(url, h, addr, retries);
                    let borrowed = HttpConfig::plain(&borrowed, &mut buf);
                    let borrowed = borrowed.unwrap_or_else(|e| panic!("{}: {e}", m.name));
                    assert_eq!(borrowed.request_bytes(), compiled.request_bytes(), "{}", m.name);
                    plain_http_checks += 1;
                }
            }
        }
        assert!(plain_http_checks > 10, "{plain_http_checks} plain http checks seen");
    }

    #[test]
    fn plain_checks_are_tcp_icmp_and_http_without_the_rare_fields() {
        let yaml = "monitors:\n\
            - {name: a, pulse_check: {type: http, config: {url: \"http://127.0.0.1:9/h\", headers: {X-A: b}}}}\n\
            - {name: b, pulse_check: {type: tcp, config: {host: db.internal, port: 5432}}}\n\
            - {name: c, pulse_check: {type: icmp, config: {host: 10.0.0.1}}}\n\
            - {name: d, pulse_check: {type: http, config: {url: \"https://example.com/\"}}}\n\
            - {name: e, pulse_check: {type: http, config: {url: \"http://127.0.0.1:9/\", body_contains: ok}}}\n\
            - {name: f, pulse_check: {type: http, config: {url: \"http://[::1]:9/\"}}}\n\
            - {name: g, pulse_check: {type: udp, config: {host: 127.0.0.1, port: 9}}}\n";
        let (monitors, report) =
            crate::manifest::load_str(yaml, None, &crate::manifest::LoadOptions::default());
        assert!(report.is_valid(), "{:?}", report.problems.kept);
        let hosts: Vec<_> =
            monitors.iter().map(|m| plain(&m.pulse_check.pulse).map(|p| p.host())).collect();
        assert_eq!(
            hosts,
            [
                Some(("127.0.0.1", 9)),
                Some(("db.internal", 5432)),
                Some(("10.0.0.1", 0)),
                None,
                None,
                None,
                None
            ]
        );
    }

    #[test]
    fn dns_servers_take_an_optional_port() {
        assert_eq!(dns_server(Some("127.0.0.1")).unwrap(), "127.0.0.1:53".parse().unwrap());
        assert_eq!(dns_server(Some("127.0.0.1:5353")).unwrap(), "127.0.0.1:5353".parse().unwrap());
        assert!(dns_server(Some("ns.example")).is_err());
    }
}
