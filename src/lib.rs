//! dropfeed: imports customers' contact files into PostgreSQL, validating
//! every row, manually from the command line or on each tenant's schedule.

pub mod access;
pub mod actions;
pub mod api;
pub mod archive;
pub mod cli;
pub mod clock;
pub mod configuration;
pub mod console;
pub mod daemon;
pub mod domain;
pub mod export;
pub mod feed;
pub mod feed_policy;
pub mod http;
pub mod import;
pub mod mail;
pub mod metrics;
pub mod notify;
pub mod pickup;
pub mod profile;
pub mod report;
pub mod rerun;
pub mod schedule;
pub mod source;
pub mod spool;
pub mod spreadsheet;
pub mod store;
pub mod telemetry;
pub mod template;
pub mod web;
