//! The integration tests: one binary, a fresh PostgreSQL database per test.

mod helpers;
mod mail;
mod servers;

mod accounts;
mod api;
mod api_access;
mod api_workflows;
mod cli;
mod console;
mod crash;
mod daemon;
mod encodings;
mod feeds;
mod file_refusals;
mod ftp;
mod ftp_feeds;
mod fuzz;
mod generated;
mod guards;
mod hostile;
mod lists;
mod mass_update;
mod modes;
mod multi_file;
mod options;
mod organisations;
mod plans;
mod profiles;
mod replicas;
mod rules;
mod s3_archive;
mod security;
mod sftp;
mod sftp_feeds;
mod workbooks;
