//! An OpenSSH sshd with internal-sftp, a throwaway user, key and password auth.
