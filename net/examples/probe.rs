//! Runs one check of a pulse type against a target, for trying probes by hand against real
//! servers (interop checks): `cargo run -p cpra-net --example probe -- grpc 127.0.0.1:50051 [service]`,
//! `... -- dns 127.0.0.1:53 example.com`, `... -- udp 127.0.0.1:9 payload`, `... -- icmp 127.0.0.1`,
//! `... -- docker /var/run/docker.sock name`.

use std::time::Duration;

use cpra_net::{dns, docker, grpc, icmp, udp};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: probe grpc|dns|udp|icmp|docker TARGET [ARG]";
    let kind = args.first().expect(usage).clone();
    let target = args.get(1).expect(usage).clone();
    let arg = args.get(2).cloned().unwrap_or_default();
    let timeout = Duration::from_secs(5);
    let outcome = glommio::LocalExecutorBuilder::default()
        .io_memory(64 << 10)
        .spawn(move || async move {
            match kind.as_str() {
                "grpc" => {
                    let cfg =
                        grpc::GrpcConfig::new(target.parse().unwrap(), &target, &arg).unwrap();
                    grpc::check(&cfg, timeout).await
                }
                "dns" => {
                    let cfg = dns::DnsConfig::new(target.parse().unwrap(), &arg, dns::DnsRecord::A)
                        .unwrap();
                    dns::check(&cfg, timeout).await
                }
                "udp" => {
                    let cfg = udp::UdpConfig::new(target.parse().unwrap(), arg.as_bytes()).unwrap();
                    udp::check(&cfg, timeout).await
                }
                "icmp" => {
                    let client = icmp::IcmpClient::new();
                    let cfg = icmp::IcmpConfig::new(target.parse().unwrap(), 3).unwrap();
                    client.check(&cfg, timeout).await
                }
                "docker" => {
                    let cfg = docker::DockerConfig::new(&target, &arg).unwrap();
                    docker::check(&cfg, timeout).await
                }
                _ => panic!("{usage}"),
            }
        })
        .unwrap()
        .join()
        .unwrap();
    println!("{outcome:?}");
    println!("{}", outcome.describe(&args[1]));
}
