//! Files and directories only their owner can read: the store's data (KV values, blobs,
//! bundles with their `env`) and the server's admin token live in them.
//!
//! Everything is created with its final mode (directories 0700, files 0600 on Unix) rather
//! than created with the umask's and narrowed afterwards, so no crash between the two steps
//! can leave data readable by other local users. On other platforms these are plain creates.

use std::path::Path;

use crate::error::StoreError;

/// Mode of directories this crate creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of files this crate creates.
pub const FILE_MODE: u32 = 0o600;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Creates `dir` and its missing parents, each with mode 0700. An existing directory keeps
/// its mode.
pub fn create_dir_all(dir: &Path) -> Result<(), StoreError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIR_MODE);
    }
    builder.create(dir).map_err(io(dir))
}

/// Narrows an existing directory to mode 0700 (the data directory the operator named, which
/// may predate this version).
pub fn restrict_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))
            .map_err(io(dir))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Creates `path` empty with mode 0600 if it does not exist; narrows it to 0600 if it does.
/// Never truncates.
pub fn create_file(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    let file = options.open(path).map_err(io(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
            .map_err(io(path))?;
    }
    drop(file);
    Ok(())
}
