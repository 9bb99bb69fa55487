//! The files a build sees: the modules a user deployed (in memory, under a virtual root `/`),
//! and, for the CLI, the function's directory on disk behind them, read with guards: a path
//! whose real location (symlinks followed) leaves the directory is refused, and a file's
//! size is checked before it is read. Every file read from disk is recorded, so the CLI sends
//! the server exactly the files the build needed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use oxc_resolver::{FileMetadata, FileSystem, ResolveError};

/// Largest single file a build reads, in bytes.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// A guard a disk read tripped (reported as the build's error).
#[derive(Debug, Clone)]
pub(crate) enum Violation {
    Outside { path: String },
    TooLarge { path: String, size: u64 },
}

/// The build's file system (cheap to clone: clones share everything).
#[derive(Debug, Default, Clone)]
pub struct SourceFs(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    /// Module name (relative, `/`-separated) → bytes.
    files: HashMap<String, Vec<u8>>,
    dirs: HashSet<String>,
    disk: Option<PathBuf>,
    read_from_disk: Mutex<BTreeMap<String, Vec<u8>>>,
    violation: Mutex<Option<Violation>>,
}

impl SourceFs {
    /// Files in memory only (the server's build).
    pub fn in_memory(files: impl IntoIterator<Item = (String, Vec<u8>)>) -> SourceFs {
        let mut inner = Inner::default();
        for (name, bytes) in files {
            inner.add(name, bytes);
        }
        SourceFs(Arc::new(inner))
    }

    /// `files` in memory, and behind them the directory `root` on disk (the CLI's build).
    pub fn with_disk(
        root: &Path,
        files: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) -> io::Result<SourceFs> {
        let mut inner = Inner::default();
        for (name, bytes) in files {
            inner.add(name, bytes);
        }
        inner.disk = Some(std::fs::canonicalize(root)?);
        Ok(SourceFs(Arc::new(inner)))
    }
}

impl Inner {
    fn add(&mut self, name: String, bytes: Vec<u8>) {
        let mut dir = name.as_str();
        while let Some((parent, _)) = dir.rsplit_once('/') {
            self.dirs.insert(parent.to_owned());
            dir = parent;
        }
        self.files.insert(name, bytes);
    }
}

impl SourceFs {
    /// The files read from disk so far, by module name.
    pub fn take_read_from_disk(&self) -> BTreeMap<String, Vec<u8>> {
        std::mem::take(
            &mut *self
                .0
                .read_from_disk
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    pub(crate) fn violation(&self) -> Option<Violation> {
        self.0
            .violation
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn trip(&self, v: Violation) -> io::Error {
        let msg = match &v {
            Violation::Outside { path } => format!("{path} is outside the function's directory"),
            Violation::TooLarge { path, size } => format!("{path} is {size} bytes"),
        };
        let mut slot = self.0.violation.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(v);
        io::Error::new(io::ErrorKind::PermissionDenied, msg)
    }

    /// The module name of an absolute path under the virtual root, if it is one.
    pub fn name_of(path: &Path) -> Option<String> {
        let mut parts = Vec::new();
        for c in path.components() {
            match c {
                Component::RootDir => {}
                Component::Normal(s) => parts.push(s.to_str()?.to_owned()),
                Component::CurDir => {}
                Component::ParentDir => {
                    parts.pop()?;
                }
                Component::Prefix(_) => return None,
            }
        }
        Some(parts.join("/"))
    }

    /// The real disk path of a virtual path, checked to stay inside the directory.
    fn on_disk(&self, path: &Path) -> io::Result<Option<(PathBuf, String)>> {
        let Some(root) = &self.0.disk else {
            return Ok(None);
        };
        let Some(name) = Self::name_of(path) else {
            return Ok(None);
        };
        let real = match std::fs::canonicalize(root.join(&name)) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match real.strip_prefix(root) {
            Ok(rel) => {
                let rel = rel
                    .components()
                    .filter_map(|c| c.as_os_str().to_str())
                    .collect::<Vec<_>>()
                    .join("/");
                Ok(Some((real, rel)))
            }
            Err(_) => Err(self.trip(Violation::Outside { path: name })),
        }
    }

    /// Reads a module by name (memory first, then disk).
    pub fn read_name(&self, name: &str) -> io::Result<Vec<u8>> {
        self.read(&Path::new("/").join(name))
    }
}

impl FileSystem for SourceFs {
    fn new() -> Self {
        SourceFs::default()
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        if let Some(name) = Self::name_of(path) {
            if let Some(b) = self.0.files.get(&name) {
                return Ok(b.clone());
            }
        }
        let Some((real, rel)) = self.on_disk(path)? else {
            return Err(io::ErrorKind::NotFound.into());
        };
        let meta = std::fs::metadata(&real)?;
        if !meta.is_file() {
            return Err(io::ErrorKind::NotFound.into());
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(self.trip(Violation::TooLarge {
                path: rel,
                size: meta.len(),
            }));
        }
        let bytes = std::fs::read(&real)?;
        self.0
            .read_from_disk
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(rel, bytes.clone());
        Ok(bytes)
    }

    fn read_to_string(&self, path: &Path) -> io::Result<String> {
        String::from_utf8(self.read(path)?)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    fn metadata(&self, path: &Path) -> io::Result<FileMetadata> {
        if let Some(name) = Self::name_of(path) {
            if self.0.files.contains_key(&name) {
                return Ok(FileMetadata::new(true, false, false));
            }
            if name.is_empty() || self.0.dirs.contains(&name) {
                return Ok(FileMetadata::new(false, true, false));
            }
        }
        match self.on_disk(path)? {
            Some((real, _)) => {
                let m = std::fs::metadata(real)?;
                Ok(FileMetadata::new(m.is_file(), m.is_dir(), false))
            }
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }

    fn symlink_metadata(&self, path: &Path) -> io::Result<FileMetadata> {
        // Every path is answered by its real location (checked to stay inside), so no
        // path is a symlink to the resolver.
        self.metadata(path)
    }

    fn read_link(&self, path: &Path) -> Result<PathBuf, ResolveError> {
        Err(ResolveError::PathNotSupported(path.to_owned()))
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        if let Some(name) = Self::name_of(path) {
            if self.0.files.contains_key(&name) || self.0.dirs.contains(&name) || name.is_empty() {
                return Ok(Path::new("/").join(name));
            }
        }
        match self.on_disk(path)? {
            Some((_, rel)) => Ok(Path::new("/").join(rel)),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }
}
