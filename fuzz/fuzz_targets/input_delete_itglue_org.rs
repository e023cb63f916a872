#![no_main]
//! Workflow 002's request JSON, then its checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| offramp::fuzzing::delete_itglue_org_input(data));
