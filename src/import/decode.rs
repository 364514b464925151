//! Byte-level checks of an input file (size, SHA-256, text or not, encoding)
//! and the reader that turns its bytes into UTF-8 for the CSV parser.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::profile::Encoding;

const CHUNK: usize = 1 << 20;

/// The encoding a file is actually read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// UTF-8; `bom` says whether three BOM bytes must be skipped.
    Utf8 { bom: bool },
    /// What Excel's "CSV (point-virgule)" writes; ISO-8859-1 is read as its
    /// superset windows-1252, as browsers do.
    Windows1252,
}

impl Resolved {
    pub fn as_str(self) -> &'static str {
        match self {
            Resolved::Utf8 { bom: false } => "utf-8",
            Resolved::Utf8 { bom: true } => "utf-8 (BOM)",
            Resolved::Windows1252 => "windows-1252",
        }
    }
}

/// What one pass over the bytes tells about a file.
#[derive(Debug, Clone)]
pub struct FileFacts {
    pub size: u64,
    pub sha256: String,
    pub encoding: Resolved,
}

/// Why a file cannot be read as text. `line` is 1-based, as an editor shows it.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{detail}")]
    NotText { line: u64, detail: String },
    #[error("line {line} is not valid utf-8")]
    InvalidUtf8 { line: u64 },
}

/// Reads the whole file once: size, SHA-256, and whether it is text in the
/// declared (or detected) encoding. Costs one sequential read, which also
/// warms the page cache for the parse that follows.
pub fn inspect(path: &Path, declared: Encoding) -> Result<(FileFacts, Option<DecodeError>), DecodeError> {
    let io_err = |source| DecodeError::Io { path: path.display().to_string(), source };
    let mut file = File::open(path).map_err(io_err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    let mut lines_before = 0u64; // newlines seen in earlier chunks
    let mut first_bytes: Vec<u8> = Vec::with_capacity(8);
    let mut nul_line: Option<u64> = None;
    let mut invalid_utf8_line: Option<u64> = None;
    // Bytes of a UTF-8 sequence cut by the chunk boundary.
    let mut carry: Vec<u8> = Vec::with_capacity(4);
    loop {
        let n = file.read(&mut buf).map_err(io_err)?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        hasher.update(chunk);
        if first_bytes.len() < 8 {
            let take = (8 - first_bytes.len()).min(n);
            first_bytes.extend_from_slice(&chunk[..take]);
        }
        if nul_line.is_none()
            && let Some(pos) = chunk.iter().position(|&b| b == 0)
        {
            nul_line = Some(lines_before + count_newlines(&chunk[..pos]) + 1);
        }
        if invalid_utf8_line.is_none() {
            match validate_utf8_chunk(&mut carry, chunk) {
                Ok(()) => {}
                Err(at) => invalid_utf8_line = Some(lines_before + count_newlines(&chunk[..at]) + 1),
            }
        }
        lines_before += count_newlines(chunk);
        size += n as u64;
    }
    if !carry.is_empty() && invalid_utf8_line.is_none() {
        invalid_utf8_line = Some(lines_before + 1);
    }
    let sha256 = hex(&hasher.finalize());
    let has_bom = first_bytes.starts_with(&[0xEF, 0xBB, 0xBF]);

    let mut facts = FileFacts { size, sha256, encoding: Resolved::Utf8 { bom: has_bom } };
    let problem = if first_bytes.starts_with(&[0xFF, 0xFE]) || first_bytes.starts_with(&[0xFE, 0xFF]) {
        Some(DecodeError::NotText { line: 1, detail: "utf-16 is not supported: save the file as CSV UTF-8".into() })
    } else if let Some(kind) = known_binary(&first_bytes) {
        Some(DecodeError::NotText { line: 1, detail: format!("it starts like a {kind} file") })
    } else if nul_line == Some(1) {
        // In the header, or in a file of UTF-16 without its BOM: nothing of it
        // can be read as columns. Further down a NUL rejects its line only
        // (`cell.nul`), as PostgreSQL's text cannot hold it.
        Some(DecodeError::NotText { line: 1, detail: "NUL byte at line 1".into() })
    } else {
        match (declared, invalid_utf8_line) {
            (Encoding::Auto | Encoding::Utf8, None) => None,
            (Encoding::Auto, Some(_)) if !has_bom => {
                facts.encoding = Resolved::Windows1252;
                None
            }
            (Encoding::Auto | Encoding::Utf8, Some(line)) => Some(DecodeError::InvalidUtf8 { line }),
            (Encoding::Windows1252 | Encoding::Iso88591, _) => {
                facts.encoding = Resolved::Windows1252;
                None
            }
        }
    };
    Ok((facts, problem))
}

/// Validates one chunk as the continuation of a UTF-8 stream. `carry` holds
/// the start of a character cut by the previous chunk boundary and receives
/// the start of one cut by this chunk's end. Returns the offset in `chunk` of
/// the first invalid byte.
fn validate_utf8_chunk(carry: &mut Vec<u8>, chunk: &[u8]) -> Result<(), usize> {
    let mut start = 0;
    if !carry.is_empty() {
        let pending = carry.len();
        let mut small = std::mem::take(carry);
        small.extend_from_slice(&chunk[..chunk.len().min(4 - pending.min(3))]);
        match std::str::from_utf8(&small) {
            Ok(_) => start = small.len() - pending,
            Err(e) if e.valid_up_to() >= pending => start = e.valid_up_to() - pending,
            Err(e) if e.error_len().is_none() => {
                // Still incomplete: the chunk is tiny; keep waiting.
                *carry = small;
                return Ok(());
            }
            Err(_) => return Err(0),
        }
    }
    // The SIMD check first; std's, slower, only to find where a bad byte is.
    if simdutf8::basic::from_utf8(&chunk[start..]).is_ok() {
        return Ok(());
    }
    match std::str::from_utf8(&chunk[start..]) {
        Ok(_) => Ok(()),
        Err(e) => match e.error_len() {
            Some(_) => Err(start + e.valid_up_to()),
            None => {
                carry.extend_from_slice(&chunk[start + e.valid_up_to()..]);
                Ok(())
            }
        },
    }
}

fn known_binary(first: &[u8]) -> Option<&'static str> {
    const MAGIC: [(&[u8], &str); 6] = [
        (b"\x89PNG", "PNG image"),
        (b"PK\x03\x04", "ZIP archive (or xlsx)"),
        (b"%PDF", "PDF"),
        (b"\xFF\xD8\xFF", "JPEG image"),
        (b"\x1F\x8B", "gzip archive"),
        (b"\xD0\xCF\x11\xE0", "legacy Excel (xls)"),
    ];
    MAGIC.iter().find(|(m, _)| first.starts_with(m)).map(|(_, kind)| *kind)
}

/// Size and SHA-256 of a file (of an archive, as dropped).
pub fn digest(path: &Path) -> io::Result<(u64, String)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex(&hasher.finalize())))
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Opens `path` as a stream of UTF-8 bytes, calling `on_read` with the
/// number of raw bytes consumed (for a progress bar).
pub fn open_utf8(
    path: &Path,
    encoding: Resolved,
    on_read: impl FnMut(usize) + Send + 'static,
) -> io::Result<Box<dyn Read + Send>> {
    let file = Counting { inner: File::open(path)?, on_read };
    match encoding {
        Resolved::Utf8 { bom } => {
            let mut reader = BufReader::with_capacity(CHUNK, file);
            if bom {
                let head = reader.fill_buf()?;
                if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
                    reader.consume(3);
                }
            }
            Ok(Box::new(reader))
        }
        Resolved::Windows1252 => Ok(Box::new(
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding_rs::WINDOWS_1252))
                .build_with_buffer(file, vec![0; CHUNK])?,
        )),
    }
}

struct Counting<R, F> {
    inner: R,
    on_read: F,
}

impl<R: Read, F: FnMut(usize)> Read for Counting<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.on_read)(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn facts_of(bytes: &[u8], declared: Encoding) -> Result<(FileFacts, Option<DecodeError>), DecodeError> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        inspect(f.path(), declared)
    }

    #[test]
    fn utf8_with_and_without_bom_is_detected() {
        let (f, e) = facts_of("email;town\na@b.ch;Genève\n".as_bytes(), Encoding::Auto).unwrap();
        assert!(e.is_none());
        assert_eq!(f.encoding, Resolved::Utf8 { bom: false });
        let (f, _) = facts_of("\u{feff}email\n".as_bytes(), Encoding::Auto).unwrap();
        assert_eq!(f.encoding, Resolved::Utf8 { bom: true });
    }

    #[test]
    fn auto_falls_back_to_windows_1252_and_utf8_profiles_name_the_bad_line() {
        let bytes = b"email;town\na@b.ch;Paris\nc@d.ch;Gen\xe8ve\n";
        let (f, e) = facts_of(bytes, Encoding::Auto).unwrap();
        assert!(e.is_none());
        assert_eq!(f.encoding, Resolved::Windows1252);
        let (_, e) = facts_of(bytes, Encoding::Utf8).unwrap();
        assert!(matches!(e, Some(DecodeError::InvalidUtf8 { line: 3 })), "{e:?}");
    }

    #[test]
    fn a_multibyte_character_cut_by_the_chunk_boundary_is_still_valid() {
        let mut bytes = vec![b'a'; CHUNK - 1];
        bytes.extend_from_slice("é\nè".as_bytes());
        let (f, e) = facts_of(&bytes, Encoding::Utf8).unwrap();
        assert!(e.is_none(), "{e:?}");
        assert_eq!(f.size, bytes.len() as u64);
    }

    #[test]
    fn binary_files_are_not_text() {
        let problem = |bytes: &[u8]| facts_of(bytes, Encoding::Auto).unwrap().1;
        assert!(matches!(problem(b"\x89PNG\r\n\x1a\n\0\0"), Some(DecodeError::NotText { .. })));
        assert!(matches!(problem(b"a\0b\nc"), Some(DecodeError::NotText { line: 1, .. })));
        // Below the header a NUL is the line's rejection (`cell.nul`), not the file's.
        assert!(problem(b"a\nb\0c").is_none());
        assert!(matches!(problem(b"\xff\xfee\0m\0"), Some(DecodeError::NotText { line: 1, .. })));
    }
}
