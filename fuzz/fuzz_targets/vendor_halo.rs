#![no_main]
//! A HaloPSA answer (`STATUS HEADER` line, then the body) through the adapter's token
//! reader, pager, error reader and record parsers.

use libfuzzer_sys::fuzz_target;
use offramp::fuzzing::Vendor;

fuzz_target!(|data: &[u8]| offramp::fuzzing::vendor_answer(Vendor::Halo, data));
