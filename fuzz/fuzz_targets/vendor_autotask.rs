#![no_main]
//! An Autotask answer (`STATUS HEADER` line, then the body) through the adapter's pager,
//! zone lookup, error reader and record parsers.

use libfuzzer_sys::fuzz_target;
use offramp::fuzzing::Vendor;

fuzz_target!(|data: &[u8]| offramp::fuzzing::vendor_answer(Vendor::Autotask, data));
