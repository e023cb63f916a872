//! Offramp's integration tests: one test binary, one module per area.
//!
//! One binary links the library once instead of once per file, which is most of the
//! build on a small machine. Every `.rs` file under this folder must be declared below;
//! [`test_files`] fails the run when one is not, so a new file is never silently skipped.
//!
//! Run one area: `cargo nextest run --workspace -E 'test(/^audit_stores::/)'`, through
//! `scripts/with-moto.sh` for the areas that talk to AWS. (`--workspace` rather than
//! `-p offramp-tests`: selecting one package resolves dependency features differently and
//! rebuilds the AWS SDK crates.)

mod api;
mod approval_page;
mod approvals;
mod audit_stores;
mod chain;
mod chain_leavers;
mod chaos;
mod configs_offboarded;
mod configs_workflow;
mod contact_sweep;
mod contacts_autotask;
mod contacts_connectwise;
mod contacts_halo;
mod contacts_workflow;
mod continuation;
mod directory_batch;
mod directory_exchange;
mod directory_graph;
mod end_to_end;
mod engine;
mod evidence;
mod free_text;
mod http_edges;
mod itglue_archive;
mod itglue_client;
mod itglue_workflow;
mod lambda_events;
mod lambda_watch;
mod licensed_users;
mod notifiers;
mod offboard_onprem;
mod offboard_user;
mod onprem_ldap;
mod psa_parity;
mod resume_from_trail;
mod rollback_systems;
mod secret_leaks;
mod secret_stores;
mod shared_limits;
mod test_files;
mod vendor_limits;
mod webhook_claim;
mod webhook_function;
mod webhooks;
mod write_faults;
