//! `berth api` end to end: the real binary serving the admin API on a free loopback port,
//! answering plain HTTP, and stopping cleanly on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A plain HTTP/1.1 GET; returns (status, body).
fn get(address: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn serves_the_admin_api_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "--store",
            store.to_str().expect("utf-8"),
            "api",
            "--listen",
            "127.0.0.1:0",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("berth starts");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("banner");
    let address = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();

    let (status, body) = get(&address, "/api/v1/models");
    assert_eq!(status, 200);
    assert!(body.contains("[]"), "{body}");
    let (status, body) = get(&address, "/api/v1/models/nope");
    assert_eq!(status, 404);
    assert!(body.contains("model 'nope' does not exist"), "{body}");
    let (status, body) = get(&address, "/api/v1/openapi.json");
    assert_eq!(status, 200);
    assert!(
        body.contains("\"openapi\"") && body.contains("/api/v1/history"),
        "{body}"
    );

    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().expect("exit");
    assert!(
        status.success(),
        "graceful shutdown exits 0, got {status:?}"
    );
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).expect("stderr");
    assert!(rest.contains("stopped"), "{rest}");
}
