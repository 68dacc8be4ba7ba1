//! Running the `berth` binary in tests: once, to its exit ([`berth`]), or as a server: start
//! it on a free loopback port, talk plain HTTP/1.1 to it, stop it with SIGTERM (or kill it with
//! SIGKILL).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

/// The repository's `fixtures` folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// Runs `berth ARGS` to its exit.
pub fn berth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .output()
        .expect("berth runs")
}

/// Runs `berth ARGS`, which must succeed; returns its standard output.
pub fn berth_ok(args: &[&str]) -> String {
    let out = berth(args);
    assert!(
        out.status.success(),
        "berth {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A CSV file as (header, rows of cells); cells are split on commas (no quoting).
pub fn read_csv(p: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(str::to_owned)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    (header, rows)
}

/// A store of a test's own, and `berth` on it: a data folder (`DIR/data`, SQLite) or a fresh
/// schema of the local PostgreSQL with artifacts in `DIR/artifacts`; `DIR` is a temporary
/// folder for the test's other files.
pub struct TestStore {
    pub dir: tempfile::TempDir,
    /// `--store S [--artifacts A]`.
    global: Vec<String>,
}

impl TestStore {
    pub fn new() -> TestStore {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = path(&dir.path().join("data")).to_string();
        TestStore {
            dir,
            global: vec!["--store".into(), store],
        }
    }

    /// A store in a fresh PostgreSQL schema; `None` (skipped) when PostgreSQL is missing and
    /// not required.
    pub fn postgres(prefix: &str) -> Option<TestStore> {
        use berth_store::testing::{PG_HOST_PORT, fresh_postgres_schema, postgres_url};
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let schema = runtime.block_on(fresh_postgres_schema(prefix))?;
        let dir = tempfile::tempdir().expect("temp dir");
        let artifacts = path(&dir.path().join("artifacts")).to_string();
        Some(TestStore {
            dir,
            global: vec![
                "--store".into(),
                postgres_url(PG_HOST_PORT, &schema),
                "--artifacts".into(),
                artifacts,
            ],
        })
    }

    /// Registers the XGBoost fixture as `churn/1`.
    pub fn with_churn(self) -> TestStore {
        let model = fixtures().join("models/xgb_classifier.json");
        self.ok(&["models", "register", "churn", path(&model)]);
        self
    }

    /// `args` after the store's global arguments.
    pub fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        self.global
            .iter()
            .map(String::as_str)
            .chain(args.iter().copied())
            .collect()
    }

    /// `berth --store ... ARGS`, to its exit.
    pub fn run(&self, args: &[&str]) -> Output {
        berth(&self.args(args))
    }

    /// `berth --store ... ARGS`, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        berth_ok(&self.args(args))
    }

    /// `berth --store ... ARGS` as a server.
    pub fn server(&self, args: &[&str]) -> Server {
        Server::start(&self.args(args))
    }
}

/// `p` as an argument.
pub fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A running `berth` server. Its stderr after the banner is collected by a thread of its own
/// (so a chatty server never blocks on a full pipe) and returned by [`Server::stop`].
pub struct Server {
    child: Child,
    stderr: Option<JoinHandle<String>>,
    pub address: String,
}

impl Server {
    /// Starts `berth ARGS --listen 127.0.0.1:0` and reads the address from its banner.
    pub fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .stderr(Stdio::piped())
            .spawn()
            .expect("berth starts");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        // The first line with a URL names the address.
        let mut banner = String::new();
        let address = loop {
            banner.clear();
            if stderr.read_line(&mut banner).expect("banner") == 0 {
                panic!("berth exited before listening");
            }
            if let Some(rest) = banner.split("http://").nth(1) {
                break rest.split('/').next().unwrap_or_default().to_string();
            }
        };
        let stderr = std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = stderr.read_to_string(&mut rest);
            rest
        });
        Server {
            child,
            stderr: Some(stderr),
            address,
        }
    }

    /// Sends one request; returns (status, headers as text, body).
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String, String) {
        self.try_request(method, path, body).expect("request")
    }

    /// [`Server::request`], with a failure to connect or read as an error.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> std::io::Result<(u16, String, String)> {
        http(&self.address, method, path, &[], body)
    }

    /// The server's process id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGTERM, then the exit status and the rest of stderr.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let status = self.child.wait().expect("exit");
        let rest = self
            .stderr
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        (status, rest)
    }
}

/// A test that fails midway must not leave its server running (it would hold the test
/// harness's output open).
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One plain HTTP/1.1 request to `address` with extra `headers`; returns (status, headers as
/// lowercase text, body).
pub fn http(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> std::io::Result<(u16, String, String)> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let body = body.unwrap_or("");
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {response:?}")))?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    Ok((status, head.to_ascii_lowercase(), body.to_string()))
}
