//! Starting the client-offboarding chain from a trigger that must answer at once (a PSA
//! webhook, the HTTP API): the Step Functions adapter starts an execution; tests use the
//! in-memory one.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::chain::ClientOffboardingRequest;
use crate::error::OfframpError;

/// An execution of the chain, started or found already started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedChain {
    /// The execution's ARN (Step Functions) or id.
    pub execution_id: String,
    /// An execution of this name existed: nothing new was started.
    pub already_started: bool,
}

#[async_trait]
pub trait ChainStarter: Send + Sync {
    /// Start one execution named `name`. Names are deterministic (a webhook's comes from its
    /// delivery key, `crate::webhook::execution_name`): a second start with the same name
    /// starts nothing and answers `already_started`, so two racing deliveries start one run.
    async fn start(&self, name: &str, request: &ClientOffboardingRequest) -> Result<StartedChain, OfframpError>;
}

/// The chain starter of tests: remembers every execution by name.
#[derive(Debug, Default)]
pub struct MemoryChainStarter {
    started: Mutex<BTreeMap<String, ClientOffboardingRequest>>,
}

impl MemoryChainStarter {
    /// The executions started, by name.
    pub fn started(&self) -> BTreeMap<String, ClientOffboardingRequest> {
        self.started.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[async_trait]
impl ChainStarter for MemoryChainStarter {
    async fn start(&self, name: &str, request: &ClientOffboardingRequest) -> Result<StartedChain, OfframpError> {
        let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        let already_started = started.contains_key(name);
        if !already_started {
            started.insert(name.to_string(), request.clone());
        }
        Ok(StartedChain { execution_id: format!("memory:{name}"), already_started })
    }
}
