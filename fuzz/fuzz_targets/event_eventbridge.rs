#![no_main]
//! An EventBridge event (the schedule, or one claiming to be), through every function's
//! entry parsing.

use libfuzzer_sys::fuzz_target;
use offramp::fuzzing::EventShape;

fuzz_target!(|data: &[u8]| offramp::fuzzing::lambda_event(EventShape::EventBridge, data));
