//! The client-offboarding chain: the workflows run one after the other for one client,
//! under one parent operation, as the state machine in `infra/statemachine/` runs them in
//! AWS and `offramp client offboard` runs them in-process
//! (docs/architecture.md#the-client-offboarding-chain).

mod request;

pub use request::{ChainStep, ChainTrigger, ClientOffboardingRequest};
