//! The vendor simulators over HTTP: one test binary, one module per simulated vendor.
//!
//! Every `.rs` file in this folder must be declared below; the `test_files` test of the
//! integration binary (`tests/integration/test_files.rs`) fails when one is not.

mod autotask_http;
mod connectwise_http;
mod fixture_parity;
mod halo_http;
mod itglue_http;
mod write_faults;
