#![no_main]
//! A ConnectWise answer (`STATUS LINK` line, then the body) through the adapter's pager,
//! error reader and record parsers.

use libfuzzer_sys::fuzz_target;
use offramp::fuzzing::Vendor;

fuzz_target!(|data: &[u8]| offramp::fuzzing::vendor_answer(Vendor::ConnectWise, data));
