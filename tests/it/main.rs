//! The integration tests: one binary, a fresh PostgreSQL database per test.

mod helpers;
mod mail;
mod servers;

mod cli;
mod crash;
mod daemon;
mod encodings;
mod feeds;
mod file_refusals;
mod ftp;
mod ftp_feeds;
mod fuzz;
mod hostile;
mod mass_update;
mod modes;
mod options;
mod profiles;
mod replicas;
mod rules;
mod security;
mod sftp;
mod sftp_feeds;
