//! What a person does to feeds, imports and runs, shared by the command line
//! and the API so that both check and answer alike, and each change is
//! written to the audit log with who made it.

pub mod accounts;
pub mod feeds;
pub mod imports;
pub mod runs;
