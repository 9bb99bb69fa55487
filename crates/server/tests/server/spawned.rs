//! A `functions serve` child process of the built binary, started on 127.0.0.1:0 and killed
//! and reaped on drop: the one way the process-level tests start a server.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_functions");

/// A running `functions serve`.
pub struct Spawned {
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The token line, if the server printed one (first start only).
    pub printed_token: Option<String>,
    /// Lines printed before `listening on`.
    pub lines: Vec<String>,
}

impl Spawned {
    /// `functions serve --listen 127.0.0.1:0 --data DATA EXTRA…` with no admin token in its
    /// environment (it creates or reads its token file).
    pub fn start(data: &Path, extra: &[&str]) -> Spawned {
        Spawned::start_with(data, extra, &[])
    }

    /// As [`Spawned::start`], with `env` set in the child's environment.
    pub fn start_with(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Spawned {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .env_remove("FUNCTIONS_ADMIN_TOKEN")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn functions serve");
        let stdout = child.stdout.take().expect("stdout");
        // From here on, Drop kills and reaps the child whatever happens.
        let mut spawned = Spawned {
            child,
            base: String::new(),
            printed_token: None,
            lines: Vec::new(),
        };
        let mut reader = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line).expect("read stdout");
            assert!(
                n > 0,
                "server exited before listening; printed {:?}",
                spawned.lines
            );
            let line = line.trim().to_owned();
            if let Some(rest) = line.strip_prefix("admin token: ") {
                spawned.printed_token = rest.split_whitespace().next().map(str::to_owned);
            }
            if let Some(addr) = line.strip_prefix("listening on ") {
                spawned.base = addr.to_owned();
                // Keep draining stdout so the child never blocks on a full pipe.
                std::thread::spawn(move || for _ in reader.lines() {});
                return spawned;
            }
            spawned.lines.push(line);
        }
    }

    /// The capnweb WebSocket URL of function `id`.
    pub fn ws(&self, id: &str) -> String {
        format!("{}/_rpc/{id}", self.base.replacen("http://", "ws://", 1))
    }

    /// Sends `sig` (for example `-TERM`) to the child.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits up to `within` for the child to exit.
    pub fn wait(mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The child's resident set size, in KiB (from `/proc/PID/status`).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS line")
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
