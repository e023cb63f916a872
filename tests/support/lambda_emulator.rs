//! The real Lambda binaries of this build under `cargo lambda watch` (the Lambda runtime
//! API emulator, installed by `make setup` into the virtualenv), invoked through its Invoke
//! API as AWS, Step Functions or `aws lambda invoke` would. Nothing in a binary knows it is
//! a test: only base URLs and credentials differ (docs/testing.md#lambda-binaries).

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process group, killed whole on drop.
pub struct ProcessGroup(Child);

impl ProcessGroup {
    /// Spawns `command` as the leader of a new process group.
    pub fn spawn(command: &mut Command, what: &str) -> Self {
        Self(command.process_group(0).spawn().unwrap_or_else(|e| panic!("start {what}: {e}")))
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: plain syscall on a process group we created.
        unsafe {
            libc::kill(-(self.0.id() as i32), libc::SIGKILL);
        }
        let _ = self.0.wait();
    }
}

/// A loopback port nothing listens on (yet).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The workspace's root directory.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

/// Waits until something accepts connections on `port`.
pub async fn wait_for_port(port: u16, what: &str, log: &Path) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(60), "{what} never listened ({})", log.display());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The binary `name` of this build. `cargo nextest run --workspace` (what `make test` runs)
/// builds every function binary beside the tests (each function package has a cold-start
/// test for that reason); run alone, a test builds it first when it is missing or older than
/// the code it is made from, so it never runs a stale binary.
pub fn function_binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"));
    let binary = target.join("debug").join(name);
    let built = std::fs::metadata(&binary).and_then(|m| m.modified()).ok();
    let newest_source = ["shared/src".to_string(), format!("functions/{name}/src")]
        .iter()
        .flat_map(|dir| walk(&workspace().join(dir)))
        .filter_map(|file| std::fs::metadata(file).and_then(|m| m.modified()).ok())
        .max();
    if built.is_none() || newest_source > built {
        let status =
            Command::new("cargo").current_dir(workspace()).args(["build", "-p", name]).status().expect("cargo build");
        assert!(status.success(), "cargo build -p {name}");
    }
    binary
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}

/// The PATH with the virtualenvs' tools (cargo-lambda) first: `OFFRAMP_VENV`'s when set,
/// then the repository's `.venv` that `make setup` fills.
pub fn path_with_venv() -> String {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("OFFRAMP_VENV").map(|v| PathBuf::from(v).join("bin")).into_iter().collect();
    dirs.push(workspace().join(".venv/bin"));
    let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    format!("{}:{}", dirs.join(":"), std::env::var("PATH").unwrap_or_default())
}

/// `cargo lambda watch --only-lambda-apis` on `port`: the emulator alone. The functions
/// are the binaries the workspace build made, started by [`Emulator::start_function`]
/// with the variables the emulator names.
pub struct Emulator {
    pub port: u16,
    log: PathBuf,
    processes: Vec<ProcessGroup>,
}

impl Emulator {
    /// Starts the emulator on `port`, logging to `log` (one file per test: nextest runs
    /// tests at once).
    pub async fn start(port: u16, log: PathBuf) -> Self {
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        let file = std::fs::File::create(&log).unwrap();
        let emulator = ProcessGroup::spawn(
            Command::new("cargo")
                .current_dir(workspace())
                .env("PATH", path_with_venv())
                .args(["lambda", "watch", "--only-lambda-apis", "--invoke-address", "127.0.0.1"])
                .args(["--invoke-port", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(file.try_clone().unwrap())
                .stderr(file),
            "cargo lambda watch (installed by make setup into .venv)",
        );
        // A function asks the runtime API for its first event as it starts: the emulator must listen.
        wait_for_port(port, "the emulator", &log).await;
        Self { port, log, processes: vec![emulator] }
    }

    /// Starts one instance of the binary `name`, served by the emulator under that name,
    /// with exactly `env` (and the runtime's own variables); start it more than once for
    /// invocations at once. Its output goes to the emulator's log.
    pub fn start_function(&mut self, name: &str, env: &[(String, String)]) {
        self.start_binary(&function_binary(name), name, env);
    }

    /// [`Emulator::start_function`] with a binary of one's choice (the bench's release build).
    pub fn start_binary(&mut self, binary: &Path, name: &str, env: &[(String, String)]) {
        let file = std::fs::OpenOptions::new().append(true).open(&self.log).unwrap();
        let process = ProcessGroup::spawn(
            Command::new(binary)
                .env_clear()
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{}/.rt/{name}", self.port))
                .env("AWS_LAMBDA_FUNCTION_NAME", name)
                .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
                .stdin(Stdio::null())
                .stdout(file.try_clone().unwrap())
                .stderr(file),
            name,
        );
        self.processes.push(process);
    }

    /// Invokes `name` with `event` (RequestResponse) and returns the status and the payload.
    pub async fn invoke(&self, name: &str, event: &serde_json::Value) -> (u16, serde_json::Value) {
        let url = format!("http://127.0.0.1:{}/2015-03-31/functions/{name}/invocations", self.port);
        let http = reqwest::Client::new();
        let response = http
            .post(&url)
            .json(event)
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .unwrap_or_else(|e| panic!("the emulator did not answer {name}: {e} (see {})", self.log.display()));
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// The emulator's and the functions' log.
    pub fn log(&self) -> &Path {
        &self.log
    }
}
