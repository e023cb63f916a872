//! The `offramp-sandbox` binary as a child process, for runs that drive the `offramp`
//! binary end to end (`make bench`, `make chaos` and its smaller test).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// A running `offramp-sandbox` (killed on drop) and the ready line it printed (its URLs).
pub struct SandboxProcess {
    child: Child,
    pub ready: Value,
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SandboxProcess {
    /// `bin/offramp-sandbox` on a free loopback port with `configs` bench configurations
    /// (and no large client), plus `extra` arguments (latency, vendor limits).
    pub fn start(bin: &Path, configs: usize, extra: &[String]) -> Self {
        let mut child = Command::new(bin.join("offramp-sandbox"))
            .args(["--port", "0", "--large-configs", "0", "--bench-configs", &configs.to_string()])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("start {}/offramp-sandbox (cargo build --workspace --bins): {e}", bin.display())
            });
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("ready line");
        let ready: Value = serde_json::from_str(&line).expect("sandbox ready line is JSON");
        Self { child, ready }
    }
}
