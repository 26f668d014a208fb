//! What the end-to-end tests share.

/// The flags that keep a `cpra run` child to itself: off the control plane's default address
/// (127.0.0.1:9850: tests run in parallel, and a second child on the same port would refuse
/// to start) and off the default data dir (`cpra-data` in the working directory: a second
/// child would find it locked, and a test must not leave files behind). Empty for other
/// subcommands; a flag `args` already gives is left as given.
pub fn isolated(args: &[&str]) -> Vec<&'static str> {
    let mut flags = Vec::new();
    if args.first() == Some(&"run") {
        if !args.contains(&"--listen") {
            flags.extend(["--listen", "none"]);
        }
        if !args.contains(&"--data-dir") {
            flags.extend(["--data-dir", "none"]);
        }
    }
    flags
}
