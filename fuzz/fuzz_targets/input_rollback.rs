#![no_main]
//! A rollback's request JSON, then its checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| offramp::fuzzing::rollback_input(data));
