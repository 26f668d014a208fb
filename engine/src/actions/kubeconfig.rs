//! Where the Kubernetes API server is and how to authenticate to it: a minimal kubeconfig
//! reader (server, token, CA) or the in-cluster service account.

/// The service-account mount inside a pod.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
