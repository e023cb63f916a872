//! Offramp core library.
//!
//! Ports and adapters: workflows in [`workflows`] are plain async functions over
//! the traits in [`ports`]; [`adapters`] implement those traits for real systems
//! (ConnectWise, DynamoDB, SQLite, Secrets Manager, environment variables).
//! Binaries (Lambda functions, the CLI) and tests only wire adapters together.

pub mod adapters;
pub mod app;
pub mod approval;
pub mod aws_sdk;
pub mod chain;
pub mod config;
pub mod domain;
pub mod entry;
pub mod error;
pub mod evidence;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod html;
pub mod http;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod logging;
pub mod operation;
pub mod ports;
pub mod secret;
pub mod webhook;
pub mod workflows;

pub use error::{ErrorCode, OfframpError};
pub use secret::SecretString;
