//! Benchmark helper: puts one file in the archive a configuration describes
//! (as a poll does, streamed multipart to S3 or hard-linked locally), then
//! reads it back with its hash checked (as a replay does), and prints the
//! times. Used by bench/archive.sh beside `aws s3 cp` on the same store.
//!
//!   archive_keep --config dropfeed.yaml FILE

use std::time::Instant;

use sha2::{Digest, Sha256};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, flag, config, file] = args.as_slice() else {
        anyhow::bail!("usage: archive_keep --config dropfeed.yaml FILE");
    };
    anyhow::ensure!(flag == "--config", "usage: archive_keep --config dropfeed.yaml FILE");
    let settings = dropfeed::configuration::load(Some(std::path::Path::new(config)))?;
    let archive = settings.archive()?;
    let path = std::path::Path::new(file);
    let bytes = std::fs::metadata(path)?.len();
    // The poll hashes while downloading; here the hash is made first, untimed.
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    let sha: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let mib = bytes as f64 / 1048576.0;

    let t0 = Instant::now();
    archive.keep(0, &sha, path).await?;
    let keep = t0.elapsed().as_secs_f64();
    println!("keep  {mib:.0} MiB to {}: {keep:.2} s ({:.0} MiB/s)", archive.location, mib / keep);

    let back = std::env::temp_dir().join(format!("archive-keep-{}", std::process::id()));
    let t0 = Instant::now();
    archive.fetch(0, &sha, &back).await?;
    let fetch = t0.elapsed().as_secs_f64();
    std::fs::remove_file(&back)?;
    println!("fetch {mib:.0} MiB, SHA-256 checked: {fetch:.2} s ({:.0} MiB/s)", mib / fetch);
    Ok(())
}
