//! The dashboard in a real browser: a `cpra run` child with 20,006 monitors on loopback (a few
//! live, three down with their reasons, the rest quiet), read by headless Chromium (Debian's
//! `chromium`; `.ci/run` installs it). Asserts what a person sees: the total, the down
//! monitors first with their reason, at most one page of rows, both filters from the URL, one
//! monitor's detail, a DOM that does not grow while the page polls, and that no connection
//! leaves 127.0.0.1 (Chromium's net log). Each view's screenshot is kept under
//! `target/tmp/dashboard/`. Without Chromium the test says so and passes.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CPRA: &str = env!("CARGO_BIN_EXE_cpra");
/// A bound for a run that went wrong, not a timing assertion.
const BOUND: Duration = Duration::from_secs(120);
/// How often the test looks again for a condition it waits for (bounded by [`BOUND`]).
const POLL: Duration = Duration::from_millis(50);
/// Quiet monitors: checked once an hour, against a listener that accepts (so never down).
const QUIET: usize = 20_000;
/// The dashboard's page: the most rows its table holds.
const PAGE: usize = 100;

/// A child process in its own process group, killed with the whole group and reaped when
/// dropped (also on a failed assertion): Chromium starts helper processes of its own.
struct Group(Child);

impl Group {
    fn spawn(command: &mut Command) -> Group {
        Group(command.process_group(0).spawn().expect("spawn"))
    }

    /// Waits for the process to end by itself, at most [`BOUND`].
    fn wait(&mut self) -> std::process::ExitStatus {
        let end = Instant::now() + BOUND;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < end, "still running after {BOUND:?}");
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let pid = self.0.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid signals the process group this test created
        // (process_group(0) made the child its leader); no memory is involved.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

/// The `cpra run` child, with the address it listens on (read from its start line).
struct Cpra {
    group: Group,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Cpra {
    fn start(dir: &Path, manifest: &str) -> Cpra {
        let path = dir.join("fleet.yaml");
        std::fs::write(&path, manifest).unwrap();
        let data = dir.join("data");
        let mut group = Group::spawn(
            Command::new(CPRA)
                .args(["run", path.to_str().unwrap(), "--listen", "127.0.0.1:0"])
                .args(["--data-dir", data.to_str().unwrap(), "--shards", "2"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        );
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let pipe = group.0.stderr.take().unwrap();
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { return };
                    if let Some(addr) = line.strip_prefix("control plane: listening on http://") {
                        let _ = tx.send(addr.trim().to_string());
                    }
                    let mut all = stderr.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
            });
        }
        let addr = match rx.recv_timeout(BOUND) {
            Ok(addr) => addr.parse().unwrap(),
            Err(_) => panic!("no listen line; stderr:\n{}", stderr.lock().unwrap()),
        };
        Cpra { group, addr, stderr }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until `condition` holds of the answer to `GET path`.
    fn wait_for(&self, path: &str, what: &str, condition: impl Fn(&str) -> bool) {
        let end = Instant::now() + BOUND;
        loop {
            let (status, _, body) = get(self.addr, path);
            if status == 200 && condition(&body) {
                return;
            }
            assert!(Instant::now() < end, "never {what}: {body}\nstderr:\n{}", self.stderr());
            std::thread::sleep(POLL);
        }
    }
}

/// Status, head and body (`Connection: close`, so the body ends at EOF).
fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: cpra\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// A loopback HTTP server answering every request with `status`; its thread ends with the
/// test process.
fn http_target(status: &'static str) -> TcpListener {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let serving = listener.try_clone().unwrap();
    std::thread::spawn(move || {
        for stream in serving.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let answer =
                format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    listener
}

/// The fleet: 3 live web monitors, one answering 503, two refused, and [`QUIET`] quiet ones.
fn fleet(ok: u16, broken: u16, quiet: u16) -> String {
    let mut m = String::from("version: \"1\"\nmonitors:\n");
    let item = |name: &str, pulse: &str| format!("  - name: {name}\n    pulse_check: {pulse}\n");
    for i in 0..3 {
        let pulse = format!(
            "{{type: http, interval: 1s, timeout: 2s, config: {{url: \"http://127.0.0.1:{ok}/\"}}}}"
        );
        m += &item(&format!("live-web-{i}"), &pulse);
    }
    let pulse = format!(
        "{{type: http, interval: 1s, timeout: 2s, config: {{url: \"http://127.0.0.1:{broken}/health\"}}}}"
    );
    m += &item("broken-web", &pulse);
    for i in 0..2 {
        // Port 1 on loopback: nothing listens there, the connection is refused.
        let pulse = "{type: tcp, interval: 1s, timeout: 2s, config: {host: 127.0.0.1, port: 1}}";
        m += &item(&format!("refused-db-{i}"), pulse);
    }
    for i in 0..QUIET {
        let pulse = format!(
            "{{type: tcp, interval: 1h, timeout: 2s, config: {{host: 127.0.0.1, port: {quiet}}}}}"
        );
        m += &item(&format!("quiet-{i:05}"), &pulse);
    }
    m
}

/// Chromium's binary, if installed.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
    })
}

/// One page load in headless Chromium: its DOM once the page has settled (virtual time, so
/// no wall-clock wait), a screenshot, and the net log of every connection it made.
struct View {
    dom: String,
    net_log: serde_json::Value,
}

fn open(browser: &Path, out: &Path, name: &str, url: &str, size: &str, budget_ms: u64) -> View {
    let profile = tempfile::tempdir().unwrap();
    let dom_path = out.join(format!("{name}.html"));
    let shot = out.join(format!("{name}.png"));
    let net_log = out.join(format!("{name}.netlog.json"));
    let mut chromium = Group::spawn(
        Command::new(browser)
            .args(["--headless=new", "--disable-gpu", "--hide-scrollbars", "--no-first-run"])
            // The sandbox needs user namespaces, which a CI container running as root lacks.
            .arg("--no-sandbox")
            // A container's /dev/shm is often 64 MB: too small for the renderer.
            .arg("--disable-dev-shm-usage")
            .arg(format!("--user-data-dir={}", profile.path().display()))
            // The browser's own traffic (updates, sign-in, autofill) off: only the page's left.
            .args(["--disable-background-networking", "--disable-component-update"])
            .args(["--disable-sync", "--disable-default-apps", "--disable-extensions"])
            .arg("--disable-features=AutofillServerCommunication,NetworkTimeServiceQuerying,Translate,OptimizationHints,MediaRouter")
            // No name resolves but loopback: what tried to leave fails, and the net log shows it.
            .arg("--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1")
            .arg(format!("--log-net-log={}", net_log.display()))
            .arg(format!("--window-size={size}"))
            .arg(format!("--virtual-time-budget={budget_ms}"))
            .arg(format!("--screenshot={}", shot.display()))
            .arg("--dump-dom")
            .arg(url)
            .stdout(File::create(&dom_path).unwrap())
            .stderr(Stdio::null()),
    );
    let status = chromium.wait();
    drop(chromium);
    assert!(status.success(), "chromium failed on {url}: {status}");
    let dom = std::fs::read_to_string(&dom_path).unwrap();
    assert!(shot.is_file(), "no screenshot of {url}");
    let net_log = serde_json::from_slice(&std::fs::read(&net_log).unwrap()).expect("a net log");
    View { dom, net_log }
}

/// Every address Chromium opened a TCP connection to, and every URL the page itself asked for
/// (its main frame and what it initiated), from the net log.
fn connections(net_log: &serde_json::Value, page: &str) -> (Vec<String>, Vec<String>) {
    let names: std::collections::HashMap<u64, &str> = net_log["constants"]["logEventTypes"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, id)| (id.as_u64().unwrap(), name.as_str()))
        .collect();
    let mut addresses = Vec::new();
    let mut urls = Vec::new();
    for event in net_log["events"].as_array().unwrap() {
        let kind = names.get(&event["type"].as_u64().unwrap_or(u64::MAX)).copied();
        let params = &event["params"];
        match kind {
            Some("TCP_CONNECT_ATTEMPT" | "TCP_CONNECT_JOB_CONNECTOR_CONNECT_START") => {
                if let Some(a) = params["address"].as_str() {
                    addresses.push(a.to_string());
                }
            }
            Some("TCP_CONNECT") => {
                if let Some(a) = params["remote_address"].as_str() {
                    addresses.push(a.to_string());
                }
            }
            Some("UDP_BYTES_SENT") => {
                addresses.push(params["address"].as_str().unwrap_or("udp").to_string())
            }
            Some("URL_REQUEST_START_JOB") => {
                let by_page = params["initiator"].as_str() == Some(page)
                    || params["request_type"].as_str() == Some("main frame");
                if by_page {
                    urls.push(params["url"].as_str().unwrap_or_default().to_string());
                }
            }
            _ => {}
        }
    }
    (addresses, urls)
}

/// The rows of the monitors table (`<tbody id="rows">`), each as its HTML.
fn rows(dom: &str) -> Vec<&str> {
    let body = dom.split_once("<tbody id=\"rows\">").expect("the table").1;
    let body = body.split_once("</tbody>").unwrap().0;
    body.split("<tr").skip(1).collect()
}

fn attribute<'a>(dom: &'a str, name: &str) -> &'a str {
    let start =
        dom.find(&format!("{name}=\"")).unwrap_or_else(|| panic!("no {name}")) + name.len() + 2;
    &dom[start..start + dom[start..].find('"').unwrap()]
}

fn text_of<'a>(dom: &'a str, id: &str) -> &'a str {
    let open = format!("id=\"{id}\">");
    let start = dom.find(&open).unwrap_or_else(|| panic!("no #{id}")) + open.len();
    &dom[start..start + dom[start..].find('<').unwrap()]
}

#[test]
fn a_person_sees_the_fleet_down_first_one_page_at_a_time_and_nothing_leaves_loopback() {
    let Some(browser) = chromium() else {
        eprintln!(
            "SKIPPED: chromium is not installed (apt-get install chromium; .ci/run does): \
             the dashboard was not tested in a browser"
        );
        return;
    };
    let ok = http_target("200 OK");
    let broken = http_target("503 Service Unavailable");
    let quiet = http_target("200 OK");
    let port = |l: &TcpListener| l.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let cpra = Cpra::start(dir.path(), &fleet(port(&ok), port(&broken), port(&quiet)));
    let total = QUIET + 6;
    cpra.wait_for("/readyz", "ready", |_| true);
    cpra.wait_for("/api/v1/monitors?state=down", "three down", |b| b.contains("\"total\":3"));
    cpra.wait_for("/api/v1/monitors?q=live-web&state=up", "the live ones up", |b| {
        b.contains("\"total\":3")
    });

    // The headers every dashboard file carries: this origin only, no sniffing.
    let (status, head, page) = get(cpra.addr, "/");
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    let csp = head.lines().find(|l| l.starts_with("content-security-policy:")).expect("a CSP");
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"), "{csp}");
    assert!(!csp.contains("http") && !csp.contains('*'), "another origin allowed: {csp}");
    assert!(!page.contains("https://") && !page.contains("http://"), "a URL elsewhere in the page");
    let (_, api_head, _) = get(cpra.addr, "/api/v1/summary");
    assert!(api_head.contains("x-content-type-options: nosniff"), "{api_head}");

    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&out).unwrap();
    let origin = format!("http://{}", cpra.addr);
    let desktop = "1366,768";
    let mut views = Vec::new();

    // The first view: the fleet's size and counts, down monitors first with their reasons,
    // one page of rows.
    let first = open(&browser, &out, "overview", &format!("{origin}/"), desktop, 3_000);
    let dom = &first.dom;
    assert_eq!(text_of(dom, "total"), "20,006", "the fleet's size, as a person reads it");
    assert_eq!(text_of(dom, "n-down"), "3");
    assert!(text_of(dom, "n-up").replace(',', "").parse::<usize>().unwrap() >= 3);
    let shown = rows(dom);
    assert_eq!(shown.len(), PAGE, "one page of {total} monitors, no more");
    for row in &shown[..3] {
        assert!(row.contains("class=\"is-down\"") && row.contains("▼</span> down"), "{row}");
    }
    let broken_row =
        shown.iter().find(|r| r.contains(">broken-web</a>")).expect("broken-web shown");
    assert!(broken_row.contains("status: ") && broken_row.contains("HTTP 503"), "{broken_row}");
    assert!(broken_row.contains("broken-web#1"), "its incident: {broken_row}");
    for i in 0..2 {
        let row = shown[..3].iter().find(|r| r.contains(&format!(">refused-db-{i}</a>")));
        let row = row.unwrap_or_else(|| panic!("refused-db-{i} among the first three"));
        assert!(row.contains("connect_refused: connect refused to 127.0.0.1:1"), "{row}");
    }
    assert!(shown[3..].iter().all(|r| !r.contains("is-down")), "the down ones come first");
    assert!(dom.contains("id=\"next\" href=\"/?cursor="), "a next page");
    views.push(first);

    // The filters, from the page's address: a bookmark shows the same view.
    let down = open(&browser, &out, "state-down", &format!("{origin}/?state=down"), desktop, 3_000);
    let shown = rows(&down.dom);
    assert_eq!(shown.len(), 3, "the three down monitors only");
    assert!(shown.iter().all(|r| r.contains("▼</span> down")));
    assert_eq!(text_of(&down.dom, "caption"), "Monitors down");
    assert!(down.dom.contains("id=\"next\" href=\"/\" hidden"), "no next page");
    views.push(down);
    let by_name = open(&browser, &out, "q-live", &format!("{origin}/?q=live-web"), desktop, 3_000);
    let shown = rows(&by_name.dom);
    assert_eq!(shown.len(), 3, "live-web-0..2");
    for (i, row) in shown.iter().enumerate() {
        assert!(
            row.contains(&format!(">live-web-{i}</a>")) && row.contains("▲</span> up"),
            "{row}"
        );
    }
    views.push(by_name);
    let both =
        open(&browser, &out, "q-and-state", &format!("{origin}/?q=db&state=down"), desktop, 3_000);
    assert_eq!(rows(&both.dom).len(), 2, "refused-db-0 and -1");
    views.push(both);

    // One monitor: its facts, a chart of its recent results, its incident, the controls.
    let detail =
        open(&browser, &out, "detail", &format!("{origin}/monitors/broken-web"), desktop, 3_000);
    let dom = &detail.dom;
    assert_eq!(text_of(dom, "detail-name"), "broken-web");
    assert!(dom.contains("<tbody id=\"recent-rows\"><tr>"), "recent results listed");
    assert!(dom.contains("▼ failure") && dom.contains("HTTP 503"), "their reason");
    let failures_drawn = dom
        .split("<rect")
        .skip(1)
        .filter(|r| {
            let r = &r[..r.find('>').unwrap()];
            r.contains("class=\"fail\"") && r.contains("visibility=\"visible\"")
        })
        .count();
    assert!(failures_drawn >= 1, "a failure in the chart");
    assert!(dom.contains("<td>broken-web#1</td>"), "its incident");
    assert!(dom.contains("data-action=\"silence\">Silence 1 h</button>"));
    views.push(detail);

    // A phone's width; and ten minutes of polling (virtual time, 120 refreshes): the page's
    // element count does not grow, rows are reused.
    let phone = open(&browser, &out, "phone", &format!("{origin}/"), "390,844", 3_000);
    assert_eq!(rows(&phone.dom).len(), PAGE);
    let settled = attribute(&phone.dom, "data-elements").to_string();
    views.push(phone);
    let hour = open(&browser, &out, "ten-minutes", &format!("{origin}/"), desktop, 600_000);
    let refreshes: u32 = attribute(&hour.dom, "data-refreshes").parse().unwrap();
    assert!(refreshes > 100, "it polled: {refreshes} refreshes");
    assert_eq!(attribute(&hour.dom, "data-elements"), settled, "the DOM grew while polling");
    assert_eq!(rows(&hour.dom).len(), PAGE);
    views.push(hour);

    // Nothing left 127.0.0.1: every connection the browser opened, and every URL the page
    // asked for.
    for view in &views {
        let (addresses, urls) = connections(&view.net_log, &origin);
        assert!(!urls.is_empty(), "the net log shows the page's requests");
        for address in &addresses {
            assert!(address.starts_with("127.0.0.1:"), "a connection left loopback: {address}");
        }
        for url in &urls {
            assert!(url.starts_with(&format!("{origin}/")), "the page asked elsewhere: {url}");
        }
    }
    eprintln!("screenshots in {}", out.display());
    drop(cpra.group);
}
