//! What the end-to-end tests share.

/// The flags that keep a `cpra run` child to itself: off the control plane's default address
/// (127.0.0.1:9850: tests run in parallel, and a second child on the same port would refuse
/// to start) and off the default data dir (`cpra-data` in the working directory: a second
/// child would find it locked, and a test must not leave files behind). Empty for other
/// subcommands; a flag `args` already gives is left as given.
#[allow(dead_code)] // not every test file runs `cpra` through it
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

/// Collects a `cpra run` child's stderr as it is written (a thread reads the pipe: a child
/// whose pipe fills would block) and returns it, with the control plane's address once the
/// child logs `control plane: listening on http://ADDR`, or `None` if it has not within `bound`
/// (it exited or hangs; the stderr says why). The child must have been spawned with
/// `Stdio::piped()` stderr and `--listen 127.0.0.1:0`.
#[allow(dead_code)] // not every test file starts a child with a control plane
pub fn capture_listening(
    child: &mut std::process::Child,
    bound: std::time::Duration,
) -> (Option<std::net::SocketAddr>, std::sync::Arc<std::sync::Mutex<String>>) {
    use std::io::BufRead;
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let pipe = child.stderr.take().expect("stderr piped");
    let all = stderr.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(pipe).lines() {
            let Ok(line) = line else { return };
            if let Some(addr) = line.strip_prefix("control plane: listening on http://") {
                let _ = tx.send(addr.trim().to_string());
            }
            let mut all = all.lock().unwrap();
            all.push_str(&line);
            all.push('\n');
        }
    });
    let addr = rx.recv_timeout(bound).ok().map(|a| a.parse().expect("a socket address"));
    (addr, stderr)
}
