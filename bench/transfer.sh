#!/usr/bin/env bash
# Transfer benchmark (issue 6, part 4): a 150 MB file fetched by dropfeed's
# SFTP and FTP sources beside OpenSSH's `sftp` and `curl ftp://`, from a
# local sshd and vsftpd started by the test harness; first on loopback, then
# through bench/delay_proxy.py adding 10 ms each way (20 ms round trip).
# Needs root (throwaway server users), sshd, vsftpd, curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
ONE_WAY_MS=${ONE_WAY_MS:-10}
SFTP=sftp::sftp_fetch_throughput_is_close_to_openssh
FTP=ftp::ftp_fetch_throughput_compared_with_curl
run() { cargo test --release --locked --test it "$1" -- --exact --ignored --nocapture 2>&1 | grep -E "MB/s|proxy|panicked|FAILED" || true; }
echo "== loopback"
run $SFTP
run $FTP
echo "== ${ONE_WAY_MS} ms each way ($((2 * ONE_WAY_MS)) ms round trip)"
export BENCH_ONE_WAY_MS=$ONE_WAY_MS
run $SFTP
run $FTP
