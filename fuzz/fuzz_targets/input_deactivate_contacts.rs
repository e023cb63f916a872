#![no_main]
//! Workflow 001's request JSON, then its checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| offramp::fuzzing::deactivate_contacts_input(data));
