//! `offramp-sandbox`: the vendor simulators as a standalone process (demo, benchmarks).
//! Prints one JSON line with its URL and credentials on stdout, then serves until
//! SIGINT or SIGTERM.

use std::io::Write;
use std::time::Duration;

use clap::Parser;
use offramp_sandbox::{CW_CLIENT_ID, CW_COMPANY_ID, CW_PRIVATE_KEY, CW_PUBLIC_KEY, Sandbox, SandboxConfig};

#[derive(Parser)]
#[command(about = "Loopback simulators of ConnectWise Manage (and later other vendors) for Offramp")]
struct Args {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Requests per second before answering 429 (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    rate_limit: u32,
    /// Configurations of the large client (company 300).
    #[arg(long, default_value_t = 10_000)]
    large_configs: usize,
    /// Configurations of the bench client (company 500).
    #[arg(long, default_value_t = 0)]
    bench_configs: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = SandboxConfig {
        latency: Duration::from_millis(args.latency_ms),
        rate_limit_per_sec: (args.rate_limit > 0).then_some(args.rate_limit),
        large_client_configs: args.large_configs,
        bench_client_configs: args.bench_configs,
    };
    let sandbox = Sandbox::start_on(config, args.port).await?;
    let ready = serde_json::json!({
        "ready": true,
        "base_url": sandbox.base_url(),
        "connectwise": {
            "url": sandbox.connectwise_url(),
            "company_id": CW_COMPANY_ID,
            "public_key": CW_PUBLIC_KEY,
            "private_key": CW_PRIVATE_KEY,
            "client_id": CW_CLIENT_ID,
        }
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{ready}")?;
    stdout.flush()?;
    drop(stdout);
    eprintln!("offramp-sandbox listening on {}", sandbox.base_url());
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate.recv() => {},
    }
    Ok(())
}
