//! `offramp-sandbox`: the vendor simulators as a standalone process (demo, benchmarks).
//! Prints one JSON line with its URL and credentials on stdout, then serves until
//! SIGINT or SIGTERM.

use std::io::Write;
use std::time::Duration;

use clap::Parser;
use offramp_sandbox::{
    AT_INTEGRATION_CODE, AT_SECRET, AT_USERNAME, CW_CLIENT_ID, CW_COMPANY_ID, CW_PRIVATE_KEY, CW_PUBLIC_KEY,
    ChaosSettings, HALO_CLIENT_ID, HALO_CLIENT_SECRET, HALO_TENANT, ITGLUE_API_KEY, Sandbox, SandboxConfig,
};

#[derive(Parser)]
#[command(about = "Loopback simulators of ConnectWise Manage, Autotask PSA and HaloPSA for Offramp")]
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
    /// Autotask API requests per rolling hour.
    #[arg(long, default_value_t = 10_000)]
    autotask_hourly_limit: u32,
    /// HaloPSA requests per rolling 5 minutes (0 = unlimited).
    #[arg(long, default_value_t = 300)]
    halo_rate_limit: u32,
    /// Share of vendor requests that run into a random fault, in percent (0 = off); see
    /// `GET /_sandbox/chaos` for the faults injected and the writes applied per item.
    #[arg(long, default_value_t = 0.0)]
    chaos_percent: f64,
    /// Seed of the random faults (the same seed strikes the same requests).
    #[arg(long, default_value_t = 0)]
    chaos_seed: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = SandboxConfig {
        latency: Duration::from_millis(args.latency_ms),
        rate_limit_per_sec: (args.rate_limit > 0).then_some(args.rate_limit),
        large_client_configs: args.large_configs,
        bench_client_configs: args.bench_configs,
        autotask_hourly_limit: args.autotask_hourly_limit,
        halo_rate_limit: (args.halo_rate_limit > 0).then_some(args.halo_rate_limit),
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::start_on(config, args.port).await?;
    if args.chaos_percent > 0.0 {
        let rate = (args.chaos_percent / 100.0).min(1.0);
        sandbox.set_chaos(Some(ChaosSettings { seed: args.chaos_seed, rate, ..ChaosSettings::default() }));
    }
    let ready = serde_json::json!({
        "ready": true,
        "base_url": sandbox.base_url(),
        "connectwise": {
            "url": sandbox.connectwise_url(),
            "company_id": CW_COMPANY_ID,
            "public_key": CW_PUBLIC_KEY,
            "private_key": CW_PRIVATE_KEY,
            "client_id": CW_CLIENT_ID,
        },
        "autotask": {
            "url": sandbox.autotask_url(),
            "zone_lookup_url": sandbox.autotask_zone_lookup_url(),
            "username": AT_USERNAME,
            "secret": AT_SECRET,
            "integration_code": AT_INTEGRATION_CODE,
        },
        "halo": {
            "url": sandbox.halo_url(),
            "tenant": HALO_TENANT,
            "client_id": HALO_CLIENT_ID,
            "client_secret": HALO_CLIENT_SECRET,
        },
        "itglue": {
            "url": sandbox.itglue_url(),
            "api_key": ITGLUE_API_KEY,
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
