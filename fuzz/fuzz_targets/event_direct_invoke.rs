#![no_main]
//! A direct invoke or Step Functions task (the event is the request), through every
//! function's entry parsing and its workflow's checks.

use libfuzzer_sys::fuzz_target;
use offramp::fuzzing::EventShape;

fuzz_target!(|data: &[u8]| offramp::fuzzing::lambda_event(EventShape::Direct, data));
