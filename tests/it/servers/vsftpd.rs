//! A vsftpd serving FTP, explicit FTPS and implicit FTPS with a generated certificate.
