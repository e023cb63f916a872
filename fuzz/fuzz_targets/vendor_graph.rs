#![no_main]
//! A Microsoft Entra / Graph answer (`STATUS HEADER` line, then the body) through the
//! mail notifier's token reader and error readers.

use libfuzzer_sys::fuzz_target;
use offramp::fuzzing::Vendor;

fuzz_target!(|data: &[u8]| offramp::fuzzing::vendor_answer(Vendor::Graph, data));
