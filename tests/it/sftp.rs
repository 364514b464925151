//! SFTP sources against a real OpenSSH sshd on a loopback port.
