//! What the end-to-end tests share.

/// The flags that keep a `cpra run` child off the control plane's default address
/// (127.0.0.1:9850): tests run in parallel, and a second child on the same port would refuse
/// to start. Empty for other subcommands and when `args` already chooses an address.
pub fn listen_off(args: &[&str]) -> &'static [&'static str] {
    if args.first() == Some(&"run") && !args.contains(&"--listen") {
        &["--listen", "none"]
    } else {
        &[]
    }
}
