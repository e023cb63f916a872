#![no_main]
//! An organization setting (first line the key, the rest the value), then its checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| offramp::fuzzing::org_setting_input(data));
