//! Running the `berth` binary as a server in tests: start it on a free loopback port, talk
//! plain HTTP/1.1 to it, stop it with SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::Duration;

/// A running `berth` server.
pub struct Server {
    child: Child,
    stderr: BufReader<ChildStderr>,
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
        Server {
            child,
            stderr,
            address,
        }
    }

    /// Sends one request; returns (status, headers as text, body).
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String, String) {
        let mut stream = TcpStream::connect(&self.address).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let body = body.unwrap_or("");
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.address,
            body.len()
        )
        .expect("request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("response");
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        (status, head.to_ascii_lowercase(), body.to_string())
    }

    /// SIGTERM, then the exit status and the rest of stderr.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let status = self.child.wait().expect("exit");
        let mut rest = String::new();
        self.stderr.read_to_string(&mut rest).expect("stderr");
        (status, rest)
    }
}
