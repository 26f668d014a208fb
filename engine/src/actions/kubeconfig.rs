//! Where the Kubernetes API server is and how to authenticate to it: a minimal kubeconfig
//! reader (the current context's cluster `server`, `certificate-authority[-data]`,
//! `insecure-skip-tls-verify`, and the user's `token` or `tokenFile`) or the in-cluster
//! service account.
//!
//! Not supported (refused with a clear error): client certificates and exec/auth-provider
//! plugins; a monitoring service account uses a bearer token.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::limits::{Size, MAX_KUBECONFIG_BYTES};
use crate::manifest::event::EventSource;
use crate::manifest::node::{self, Anchors, Node};
use crate::manifest::yaml::YamlReader;

/// The service-account mount inside a pod.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// How to reach the API server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// `https://host:port`.
    pub server: String,
    pub token: Option<String>,
    /// A PEM file with the cluster's CA.
    pub ca_file: Option<PathBuf>,
    /// The CA given inline (`certificate-authority-data`), PEM, to be written to a file.
    pub ca_pem: Option<Vec<u8>>,
    pub insecure_skip_verify: bool,
}

fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    file.take(MAX_KUBECONFIG_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if out.len() as u64 > MAX_KUBECONFIG_BYTES {
        return Err(format!(
            "{}: larger than {}, too large for a kubeconfig",
            path.display(),
            Size(MAX_KUBECONFIG_BYTES)
        ));
    }
    Ok(out)
}

fn scalar<'a>(node: &Node<'a>, key: &str) -> Option<&'a str> {
    node.get(key).and_then(|e| e.value.scalar()).filter(|s| !s.is_empty())
}

/// The entry named `name` in the list `list` (`clusters`, `users`, `contexts`), as its inner
/// block (`cluster`, `user`, `context`).
fn named<'a>(root: &Node<'a>, list: &str, inner: &str, name: &str) -> Option<Node<'a>> {
    let crate::manifest::node::NodeKind::Seq(items) = root.get(list)?.value.kind else {
        return None;
    };
    items.iter().find(|i| scalar(i, "name") == Some(name)).and_then(|i| Some(i.get(inner)?.value))
}

/// Parses a kubeconfig's text; `dir` resolves relative file paths in it.
pub fn parse(text: &[u8], dir: &Path) -> Result<Cluster, String> {
    let mut reader = YamlReader::new(Cursor::new(text.to_vec()));
    let first = reader.next_event().map_err(|e| format!("{}: {}", e.pos, e.message))?;
    let tree = node::build(&mut reader, first, &mut Anchors::default())
        .map_err(|e| format!("{}: {}", e.pos, e.message))?;
    let root = tree.root();
    let context_name =
        scalar(&root, "current-context").ok_or("no current-context in the kubeconfig")?;
    let context = named(&root, "contexts", "context", context_name)
        .ok_or_else(|| format!("context `{context_name}` not found"))?;
    let cluster_name = scalar(&context, "cluster").ok_or("the current context names no cluster")?;
    let cluster = named(&root, "clusters", "cluster", cluster_name)
        .ok_or_else(|| format!("cluster `{cluster_name}` not found"))?;
    let server = scalar(&cluster, "server").ok_or("the cluster has no server")?.to_owned();
    let relative = |p: &str| {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_owned()
        } else {
            dir.join(p)
        }
    };
    let ca_pem = match scalar(&cluster, "certificate-authority-data") {
        Some(data) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|e| format!("certificate-authority-data is not base64: {e}"))?,
        ),
        None => None,
    };
    let mut token = None;
    if let Some(user_name) = scalar(&context, "user") {
        if let Some(user) = named(&root, "users", "user", user_name) {
            if user.get("exec").is_some() || user.get("auth-provider").is_some() {
                return Err(format!(
                    "user `{user_name}` uses an exec or auth-provider plugin: give CPRA a service \
                     account token instead"
                ));
            }
            token = match (scalar(&user, "token"), scalar(&user, "tokenFile")) {
                (Some(t), _) => Some(t.to_owned()),
                (None, Some(f)) => {
                    Some(String::from_utf8_lossy(&read_capped(&relative(f))?).trim().to_owned())
                }
                (None, None) => None,
            };
        }
    }
    Ok(Cluster {
        server,
        token,
        ca_file: scalar(&cluster, "certificate-authority").map(relative),
        ca_pem,
        insecure_skip_verify: scalar(&cluster, "insecure-skip-tls-verify") == Some("true"),
    })
}

/// Reads the kubeconfig at `path`.
pub fn load(path: &Path) -> Result<Cluster, String> {
    let text = read_capped(path)?;
    parse(&text, path.parent().unwrap_or(Path::new(".")))
        .map_err(|e| format!("kubeconfig {}: {e}", path.display()))
}

/// The in-cluster service account: `KUBERNETES_SERVICE_HOST`/`_PORT` and the mounted token
/// and CA.
pub fn in_cluster(dir: &Path, host: Option<&str>, port: Option<&str>) -> Result<Cluster, String> {
    let host = host.ok_or(
        "not in a cluster: KUBERNETES_SERVICE_HOST is not set and no kubeconfig_path given",
    )?;
    let port = port.unwrap_or("443");
    let token = String::from_utf8_lossy(&read_capped(&dir.join("token"))?).trim().to_owned();
    let host = if host.contains(':') { format!("[{host}]") } else { host.to_owned() };
    Ok(Cluster {
        server: format!("https://{host}:{port}"),
        token: Some(token),
        ca_file: Some(dir.join("ca.crt")),
        ca_pem: None,
        insecure_skip_verify: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG: &str = "\
apiVersion: v1
kind: Config
clusters:
- name: other
  cluster:
    server: https://10.9.9.9:6443
- name: kind
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority: ca.pem
contexts:
- name: ops
  context:
    cluster: kind
    user: cpra
current-context: ops
users:
- name: cpra
  user:
    token: s3cret
";

    #[test]
    fn reads_the_current_context() {
        let c = parse(KUBECONFIG.as_bytes(), Path::new("/etc/kube")).unwrap();
        assert_eq!(c.server, "https://127.0.0.1:6443");
        assert_eq!(c.token.as_deref(), Some("s3cret"));
        assert_eq!(c.ca_file, Some(PathBuf::from("/etc/kube/ca.pem")));
        assert!(!c.insecure_skip_verify);
    }

    #[test]
    fn inline_ca_is_decoded() {
        let text = KUBECONFIG
            .replace("certificate-authority: ca.pem", "certificate-authority-data: aGVsbG8=");
        let c = parse(text.as_bytes(), Path::new("/")).unwrap();
        assert_eq!(c.ca_pem.as_deref(), Some(&b"hello"[..]));
    }

    #[test]
    fn errors_say_what_is_missing() {
        let text = KUBECONFIG.replace("current-context: ops", "current-context: nope");
        assert_eq!(parse(text.as_bytes(), Path::new("/")).unwrap_err(), "context `nope` not found");
        let err = parse(b"a: [", Path::new("/")).unwrap_err();
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn in_cluster_reads_the_mount() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "tok\n").unwrap();
        let c = in_cluster(dir.path(), Some("10.0.0.1"), Some("443")).unwrap();
        assert_eq!((c.server.as_str(), c.token.as_deref()), ("https://10.0.0.1:443", Some("tok")));
        assert!(in_cluster(dir.path(), None, None).is_err());
    }
}
