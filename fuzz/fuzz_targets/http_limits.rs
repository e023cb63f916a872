#![no_main]
//! The HTTP layer's bounds: `Retry-After` (the first line; seconds or a date) at every cap,
//! JSON depth, body excerpts, the redactor.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| offramp::fuzzing::http_limits(data));
