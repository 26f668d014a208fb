//! The `tls` pulse: a TLS handshake plus the certificate's expiry. Days left at most
//! `critical_days` fails (`Certificate`); at most `warn_days` succeeds with
//! `Warning::CertificateExpiring`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;

use crate::deadline::Deadline;
use crate::outcome::{Detail, FailureKind, Outcome, Warning};
use crate::tcp;
use crate::tls::{self, TlsConfigError};

/// A `tls` monitor, resolved and compiled at load.
#[derive(Clone, Debug)]
pub struct TlsCheckConfig {
    pub addr: SocketAddr,
    pub name: ServerName<'static>,
    pub client: Arc<ClientConfig>,
    pub warn_days: i32,
    pub critical_days: i32,
}

impl TlsCheckConfig {
    /// Builds the config; `warn_days` must be at least `critical_days`.
    pub fn new(
        addr: SocketAddr,
        host: &str,
        client: Arc<ClientConfig>,
        warn_days: i32,
        critical_days: i32,
    ) -> Result<Self, TlsConfigError> {
        if warn_days < critical_days {
            return Err(TlsConfigError(format!(
                "warn_days ({warn_days}) must be at least critical_days ({critical_days})"
            )));
        }
        Ok(TlsCheckConfig { addr, name: tls::server_name(host)?, client, warn_days, critical_days })
    }
}

/// The expiry rule, on its own so it is tested without a handshake.
pub fn judge_days_left(
    days_left: i32,
    warn_days: i32,
    critical_days: i32,
) -> Result<Option<Warning>, Detail> {
    debug_assert!(warn_days >= critical_days);
    if days_left <= critical_days {
        Err(Detail::CertDaysLeft(days_left))
    } else if days_left <= warn_days {
        Ok(Some(Warning::CertificateExpiring { days_left }))
    } else {
        Ok(None)
    }
}

/// Runs one `tls` check within `timeout`.
pub async fn check(cfg: &TlsCheckConfig, timeout: Duration) -> Outcome {
    let deadline = Deadline::after(timeout);
    let tcp = match tcp::connect(cfg.addr, &deadline).await {
        Ok(tcp) => tcp,
        Err((kind, detail)) => return Outcome::failure(kind, deadline.elapsed_us(), detail),
    };
    // The check closes first, right after the handshake: a reset, not a TIME_WAIT per check.
    tcp::reset_on_close(&tcp);
    let hs = match tls::handshake(tcp, &cfg.client, &cfg.name, &deadline).await {
        Ok(hs) => hs,
        Err((kind, detail)) => return Outcome::failure(kind, deadline.elapsed_us(), detail),
    };
    let latency_us = deadline.elapsed_us();
    drop(hs.stream);
    let Some(days) = hs.cert_days_left else {
        return Outcome::failure(
            FailureKind::Certificate,
            latency_us,
            Detail::Text("peer certificate could not be parsed"),
        );
    };
    let mut outcome = match judge_days_left(days, cfg.warn_days, cfg.critical_days) {
        Ok(warning) => Outcome { warning, ..Outcome::success(latency_us) },
        Err(detail) => Outcome::failure(FailureKind::Certificate, latency_us, detail),
    };
    outcome.cert_days_left = Some(days);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_rule() {
        assert_eq!(judge_days_left(100, 30, 7), Ok(None));
        assert_eq!(
            judge_days_left(30, 30, 7),
            Ok(Some(Warning::CertificateExpiring { days_left: 30 }))
        );
        assert_eq!(judge_days_left(7, 30, 7), Err(Detail::CertDaysLeft(7)));
        assert_eq!(judge_days_left(-3, 30, 7), Err(Detail::CertDaysLeft(-3)));
    }
}

#[cfg(test)]
mod handshake_tests {
    use super::*;
    use crate::test_executor::run;
    use crate::test_server::{self, cert_expiring_in, ok_close};
    use crate::tls::{client_config, TlsOptions};

    fn tls_check(expires_in_days: i64) -> Outcome {
        let cert = cert_expiring_in(expires_in_days);
        let server = test_server::https(&cert, ok_close);
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, &cert.cert_pem).unwrap();
        let opts = TlsOptions { ca_file: Some(ca), insecure_skip_verify: false };
        let cfg =
            TlsCheckConfig::new(server.addr, "localhost", client_config(&opts).unwrap(), 30, 7)
                .unwrap();
        run(move || async move { check(&cfg, Duration::from_secs(3)).await })
    }

    #[test]
    fn healthy_certificate_passes_with_days_left() {
        let o = tls_check(200);
        assert!(o.is_success() && o.warning.is_none(), "{o:?}");
        assert!(o.cert_days_left.is_some_and(|d| (199..=200).contains(&d)), "{o:?}");
    }

    #[test]
    fn expiring_certificate_warns() {
        let o = tls_check(20);
        assert!(o.is_success(), "{o:?}");
        assert!(matches!(o.warning, Some(Warning::CertificateExpiring { days_left: 19..=20 })));
    }

    #[test]
    fn nearly_expired_certificate_fails() {
        let o = tls_check(3);
        assert_eq!(o.failure, Some(FailureKind::Certificate), "{o:?}");
        assert!(matches!(o.detail, Detail::CertDaysLeft(2..=3)), "{o:?}");
    }

    #[test]
    fn expired_certificate_fails_in_the_handshake() {
        let o = tls_check(-10);
        assert_eq!(o.failure, Some(FailureKind::Certificate), "{o:?}");
        assert!(matches!(o.detail, Detail::CertDaysLeft(-10..=-9)), "{o:?}");
    }

    #[test]
    fn a_target_failing_once_fails_the_check_unless_retries_allow_one_more() {
        let cert = cert_expiring_in(200);
        let opts = TlsOptions { ca_file: None, insecure_skip_verify: true };
        for (retries, failure) in [(0, Some(FailureKind::Tls)), (1, None)] {
            // The first connection is closed during the handshake; the next is served.
            let server = test_server::https_dropping(&cert, ok_close, 1);
            let client = client_config(&opts).unwrap();
            let cfg = TlsCheckConfig::new(server.addr, "localhost", client, 30, 7).unwrap();
            let o = run(move || async move {
                let timeout = Duration::from_secs(3);
                crate::retry::with_retries(retries, timeout, |t| check(&cfg, t)).await
            });
            assert_eq!(o.failure, failure, "retries {retries}: {o:?}");
        }
    }

    #[test]
    fn every_tls_check_makes_a_full_handshake_and_ends_with_a_reset() {
        let cert = cert_expiring_in(200);
        let server = test_server::https(&cert, ok_close);
        let opts = TlsOptions { ca_file: None, insecure_skip_verify: true };
        let client = crate::http::TlsConfigCache::default().get_full(&opts).unwrap();
        let cfg = TlsCheckConfig::new(server.addr, "localhost", client, 30, 7).unwrap();
        let outcomes = run(move || async move {
            let mut outcomes = Vec::new();
            for _ in 0..3 {
                outcomes.push(check(&cfg, Duration::from_secs(3)).await);
            }
            outcomes
        });
        assert!(outcomes.iter().all(Outcome::is_success), "{outcomes:?}");
        assert_eq!(server.connections.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert_eq!(server.resumed.load(std::sync::atomic::Ordering::SeqCst), 0);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = client_config(&opts).unwrap();
        let cfg = TlsCheckConfig::new(addr, "localhost", client, 30, 7).unwrap();
        // A plain listener: the handshake fails (the peer never answers the ClientHello) and
        // the check's socket is closed first, with a reset.
        let watcher = std::thread::spawn(move || crate::tcp::tests::peer_resets(&listener));
        let o = run(move || async move { check(&cfg, Duration::from_millis(300)).await });
        assert_eq!(o.failure, Some(FailureKind::Timeout), "{o:?}");
        assert!(watcher.join().unwrap());
    }

    #[test]
    fn invalid_thresholds_are_rejected() {
        let client = client_config(&TlsOptions::default()).unwrap();
        let addr = "127.0.0.1:443".parse().unwrap();
        assert!(TlsCheckConfig::new(addr, "localhost", client, 5, 10).is_err());
    }
}
