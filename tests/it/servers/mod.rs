//! Real servers for the tests, started on loopback ports and stopped on drop.

pub mod garage;
pub mod postgres;
pub mod smtp;
pub mod sshd;
pub mod vsftpd;
