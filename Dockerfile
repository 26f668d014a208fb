# CPRA in a container: built in a Rust image, run as a non-root user in a slim one.
#
#   docker build -t cpra .
#   docker run --rm \
#     --ulimit nofile=1048576 --ulimit memlock=-1 \
#     --security-opt seccomp=unconfined \
#     -v $PWD/fleet.yaml:/etc/cpra/fleet.yaml:ro -v cpra-data:/var/lib/cpra \
#     -p 127.0.0.1:9850:9850 cpra
#
# What it needs from the runtime (docs/operations.md, "Running in a container"):
# - io_uring: Docker's default seccomp profile refuses io_uring_setup/enter/register (since
#   Docker 25): run unconfined as above, or with a copy of the default profile that adds
#   those three syscalls.
# - RLIMIT_MEMLOCK and RLIMIT_NOFILE: the --ulimit flags above (`cpra tune` inside the
#   container says whether they are enough for the runtime settings).
# - ICMP checks: ping sockets, which Docker allows every group by default
#   (net.ipv4.ping_group_range), so no capability; without them, --cap-add NET_RAW and
#   run as root. No other capability is needed: --cap-drop ALL is fine.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY engine engine
COPY net net
COPY bench bench
RUN cargo build --release --locked -p cpra-engine --bin cpra

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/cpra --shell /usr/sbin/nologin cpra \
    && mkdir -p /etc/cpra /var/lib/cpra \
    && chown cpra:cpra /var/lib/cpra
COPY --from=build /src/target/release/cpra /usr/local/bin/cpra
# The tuned runtime settings per core count: pick one with --config /etc/cpra/tuned/cores-N.yaml.
COPY deploy/tuned /etc/cpra/tuned
USER 10001
VOLUME /var/lib/cpra
EXPOSE 9850
ENTRYPOINT ["/usr/local/bin/cpra"]
CMD ["run", "/etc/cpra/fleet.yaml", "--data-dir", "/var/lib/cpra", "--listen", "0.0.0.0:9850"]
