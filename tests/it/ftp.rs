//! FTP and FTPS sources against a real vsftpd on loopback ports.
