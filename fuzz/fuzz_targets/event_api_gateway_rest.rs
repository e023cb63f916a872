#![no_main]
//! An API Gateway REST API proxy event, through every function's entry parsing and the
//! checks of the request its body carries.

use libfuzzer_sys::fuzz_target;
use offramp::fuzzing::EventShape;

fuzz_target!(|data: &[u8]| offramp::fuzzing::lambda_event(EventShape::RestApi, data));
