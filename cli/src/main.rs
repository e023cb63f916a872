//! `offramp`: run Offramp's workflows from a terminal, read the audit trail.
//!
//! Settings come from the environment (see `offramp::config`) and an optional
//! `--config FILE`. This file only parses and dispatches: each command lives in
//! `commands/`, every command that changes data goes through `confirm`, and the exit
//! code is always the report's (or the error's) row of `offramp::error::ErrorCode`'s
//! table, listed by `offramp --help` (`exit_codes`).

mod commands;
mod confirm;
mod exit_codes;
mod output;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use offramp::config::ConfigSource;
use offramp::error::OfframpError;
use offramp::logging::{self, LogFormat};

use commands::{audit, client, configs, contacts, itglue, rollback, settings, user, webhooks};

#[derive(Parser)]
#[command(
    name = "offramp",
    version,
    about = "Offboarding automation for MSPs: planned, approved, audited, resumable",
    after_help = exit_codes::help()
)]
struct Cli {
    /// TOML file whose keys are the environment variable names (the environment wins).
    #[arg(long, global = true, env = "OFFRAMP_CONFIG")]
    config: Option<PathBuf>,
    /// Log level (also RUST_LOG).
    #[arg(long, global = true, default_value = "warn")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// PSA configurations (workflow 000, docs/workflows.md).
    #[command(subcommand)]
    Configs(configs::ConfigsCommand),
    /// PSA contacts (workflow 001, docs/workflows.md).
    #[command(subcommand)]
    Contacts(contacts::ContactsCommand),
    /// Put back what an operation changed (configuration or contact deactivation).
    Rollback(rollback::RollbackArgs),
    /// Organization settings per client, with global defaults.
    #[command(subcommand)]
    Settings(settings::SettingsCommand),
    /// IT Glue (workflow 002, docs/workflows.md).
    #[command(subcommand)]
    Itglue(itglue::ItglueCommand),
    /// Microsoft 365 users (workflow 003, docs/workflows.md).
    #[command(subcommand)]
    User(user::UserCommand),
    /// Read the audit trail.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// A whole client: the workflows chained (docs/architecture.md).
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// PSA webhooks: register Offramp's URL with the PSA (issue 15).
    #[command(subcommand)]
    Webhooks(webhooks::WebhooksCommand),
}

fn main() {
    let cli = Cli::parse();
    logging::init(&cli.log_level, if std::io::stderr().is_terminal() { LogFormat::Text } else { LogFormat::Json });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let code = runtime.block_on(async {
        match run(cli).await {
            Ok(code) => code,
            Err(error) => {
                eprintln!("error [{}]: {error}", error.code());
                error.code().exit_code()
            }
        }
    });
    std::process::exit(code);
}

async fn run(cli: Cli) -> Result<i32, OfframpError> {
    let source = ConfigSource::from_env_and_file(cli.config.as_deref())?;
    match cli.command {
        Command::Configs(command) => configs::run(&source, command).await,
        Command::Contacts(command) => contacts::run(&source, command).await,
        Command::Rollback(args) => rollback::run(&source, args).await,
        Command::Settings(command) => settings::run(&source, command).await,
        Command::Itglue(command) => itglue::run(&source, command).await,
        Command::User(command) => user::run(&source, command).await,
        Command::Audit(command) => audit::run(&source, command).await,
        Command::Client(command) => client::run(&source, command).await,
        Command::Webhooks(command) => webhooks::run(&source, command).await,
    }
}
