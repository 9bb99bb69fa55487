//! The admin token: given by the operator, or generated on first start and kept in the data
//! directory (file [`TOKEN_FILE`], mode 0600 on Unix) so restarts keep it. With a shared
//! store ([`required`]) it must be given: several nodes would each generate their own.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The token file's name inside the data directory.
pub const TOKEN_FILE: &str = "admin-token";

/// Where the token in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// The operator gave it (flag or `FUNCTIONS_ADMIN_TOKEN`); nothing was written.
    Given,
    /// Read from the data directory.
    Stored,
    /// Generated now and written to the data directory: print it once.
    Generated,
}

/// Why the token could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Reading or writing the token file failed.
    #[error("admin token file {path:?}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The token given or stored is empty or has whitespace or control characters.
    #[error("admin token {0}: it must be non-empty printable ASCII without spaces")]
    Invalid(&'static str),
    /// A shared store is configured but no token was given.
    #[error(
        "an admin token is required with a shared store (--store postgres://…): set \
         FUNCTIONS_ADMIN_TOKEN to the same token on every node"
    )]
    Required,
    /// The system's random source failed.
    #[error("cannot generate an admin token: {0}")]
    Random(String),
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    if getrandom::fill(&mut buf).is_err() {
        // Trace and span ids only need to be unique-ish; the token path checks separately.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (nanos >> ((i % 16) * 8)) as u8 ^ (i as u8);
        }
    }
    hex(&buf)
}

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

fn valid(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic())
}

/// Reads the stored token, if there is one.
pub fn read(data_dir: &Path) -> Result<Option<String>, TokenError> {
    let path = data_dir.join(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            let t = s.trim().to_owned();
            if valid(&t) {
                Ok(Some(t))
            } else {
                Err(TokenError::Invalid("in the token file is malformed"))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TokenError::Io { path, source }),
    }
}

/// The token given by the operator, checked; [`TokenError::Required`] when there is none
/// (a shared store: every node must use the same token, so none may generate one).
pub fn required(given: Option<String>) -> Result<String, TokenError> {
    let t = given.map(|t| t.trim().to_owned()).unwrap_or_default();
    if t.is_empty() {
        return Err(TokenError::Required);
    }
    if !valid(&t) {
        return Err(TokenError::Invalid("given"));
    }
    Ok(t)
}

/// The token to use: `given`, else the stored one, else a new one (written to `data_dir`).
pub fn load_or_create(
    data_dir: &Path,
    given: Option<String>,
) -> Result<(String, TokenSource), TokenError> {
    if let Some(t) = given {
        let t = t.trim().to_owned();
        if !valid(&t) {
            return Err(TokenError::Invalid("given"));
        }
        return Ok((t, TokenSource::Given));
    }
    if let Some(t) = read(data_dir)? {
        return Ok((t, TokenSource::Stored));
    }
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf).map_err(|e| TokenError::Random(e.to_string()))?;
    let token: String = buf.iter().map(|b| format!("{b:02x}")).collect();
    let path = data_dir.join(TOKEN_FILE);
    let io = |source| TokenError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(data_dir).map_err(io)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path).map_err(io)?;
    file.write_all(format!("{token}\n").as_bytes())
        .map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok((token, TokenSource::Generated))
}
