//! The vendor simulators over HTTP: one test binary, one module per simulated vendor.
//!
//! Every `.rs` file in this folder must be declared below; the `test_files` test of the
//! integration binary (`tests/integration/test_files.rs`) fails when one is not.

mod autotask_http;
mod connectwise_http;
mod fixture_parity;
mod halo_http;
mod itglue_http;
mod m365_exchange_http;
mod m365_graph_http;
mod m365_support;
mod write_faults;
