//! Zip archives as dropped (SecuTix delivers its exports zipped): the one
//! CSV, TXT or workbook inside is unpacked within the limits, so that a zip bomb, an
//! entry named `../../etc/passwd` or an encrypted entry is refused, never
//! unpacked. Entries are never written under their own names.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use crate::configuration::Limits;

use super::rules::FileFailure;
use super::rules::Rule;

/// The entry that was unpacked.
#[derive(Debug)]
pub struct Unpacked {
    pub entry: String,
    pub bytes: u64,
}

/// Whether a name is a workbook's (what an archive entry may be; the
/// workbook reader detects by content, not by name).
pub fn has_workbook_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [".xlsx", ".xlsm", ".xls"].iter().any(|ext| name.ends_with(ext))
}

/// Whether the file starts like a zip archive (an xlsx is one too).
pub fn is_zip(path: &Path) -> io::Result<bool> {
    let mut magic = [0u8; 4];
    let mut file = File::open(path)?;
    let n = file.read(&mut magic)?;
    Ok(n == 4 && (&magic == b"PK\x03\x04" || &magic == b"PK\x05\x06"))
}

/// Unpacks the archive's one CSV, TXT or workbook (.xlsx, .xlsm, .xls)
/// into `dest`; a workbook is converted afterwards, like a dropped one.
pub fn unpack(path: &Path, limits: &Limits, dest: &mut File) -> Result<Unpacked, FileFailure> {
    let invalid = |e: &dyn std::fmt::Display| FileFailure::new(Rule::ArchiveInvalid, None, e.to_string());
    let mut file = File::open(path).map_err(|e| invalid(&e))?;
    // The zip crate reads the whole central directory into memory: count
    // the entries first, from the end record.
    let declared = declared_entries(&mut file).map_err(|e| invalid(&e))?;
    if declared > limits.max_archive_entries {
        let detail = format!("{declared} > {}", limits.max_archive_entries);
        return Err(FileFailure::new(Rule::ArchiveEntries, None, detail));
    }
    file.seek(SeekFrom::Start(0)).map_err(|e| invalid(&e))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| invalid(&e))?;

    let mut files = Vec::new();
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(|e| invalid(&e))?;
        let name = entry.name().to_owned();
        if entry.enclosed_name().is_none() {
            return Err(FileFailure::new(Rule::ArchiveUnsafePath, None, name));
        }
        // What macOS's Finder adds to every archive it makes.
        if entry.is_dir() || name.starts_with("__MACOSX/") || name.ends_with(".DS_Store") {
            continue;
        }
        files.push((i, name, entry.encrypted(), entry.size()));
    }
    // A zip inside is refused here: one level of archive only.
    let is_table = |n: &str| {
        let lower = n.to_ascii_lowercase();
        lower.ends_with(".csv") || lower.ends_with(".txt") || has_workbook_name(n)
    };
    let (index, name, encrypted, declared_size) = match files.as_slice() {
        [(i, name, encrypted, size)] if is_table(name) => (*i, name.clone(), *encrypted, *size),
        _ => {
            let names: Vec<&str> = files.iter().map(|f| f.1.as_str()).take(10).collect();
            let detail = if names.is_empty() { "-".to_owned() } else { names.join(", ") };
            return Err(FileFailure::new(Rule::ArchiveEntries, None, detail));
        }
    };
    if encrypted {
        return Err(FileFailure::new(Rule::ArchiveEncrypted, None, name));
    }
    let max = limits.max_unpacked_bytes;
    let too_large = |n: u64| FileFailure::new(Rule::ArchiveTooLarge, None, format!("{name}: {n} bytes > {max}"));
    if declared_size > max {
        return Err(too_large(declared_size));
    }
    // The declared size may lie: count what actually comes out.
    let mut entry = archive.by_index(index).map_err(|e| invalid(&e))?;
    let copied = io::copy(&mut (&mut entry).take(max + 1), dest).map_err(|e| invalid(&format!("{name}: {e}")))?;
    if copied > max {
        return Err(too_large(copied));
    }
    Ok(Unpacked { entry: name, bytes: copied })
}

/// Entries recorded in the end-of-central-directory record (a zip64 archive
/// says 0xFFFF there, more than any sensible limit).
pub(crate) fn declared_entries(file: &mut File) -> io::Result<u64> {
    const END: &[u8] = b"PK\x05\x06";
    let len = file.seek(SeekFrom::End(0))?;
    let tail = len.min(22 + 65_535);
    file.seek(SeekFrom::Start(len - tail))?;
    let mut buf = vec![0; tail as usize];
    file.read_exact(&mut buf)?;
    let at = buf
        .windows(4)
        .rposition(|w| w == END)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no end of central directory"))?;
    let count = buf
        .get(at + 10..at + 12)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "truncated end of central directory"))?;
    Ok(u64::from(u16::from_le_bytes([count[0], count[1]])))
}
