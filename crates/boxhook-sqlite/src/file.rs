//! The inbox file on disk: its identity (to notice it being deleted or
//! replaced while open), its `-wal` sibling, and read-only URIs.

use std::path::{Path, PathBuf};

use boxhook::inbox::{ErrorKind, InboxError};

/// `path` with `suffix` appended to its file name: `inbox.sqlite-wal`.
pub(crate) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Which file a path named when the inbox was opened: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    #[cfg(unix)]
    fn of(path: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::metadata(path)?;
        Ok(Self {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    #[cfg(not(unix))]
    fn of(_path: &Path) -> std::io::Result<Self> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "file identity is only checked on Unix",
        ))
    }
}

/// The database file and its write-ahead log as they were when the inbox
/// was opened. SQLite keeps writing through its open descriptors when
/// either is unlinked or has another file renamed over it, so a commit
/// succeeds into a file nobody will open again; [`Identity::check`] notices.
#[derive(Debug)]
pub(crate) struct Identity {
    files: Vec<(PathBuf, FileId)>,
}

impl Identity {
    /// The identity of `path` and of its `-wal` (which exists while a
    /// WAL-mode connection is open). `None` where identities are not
    /// available (not Unix) or the database file cannot be examined.
    pub(crate) fn capture(path: &Path) -> Option<Self> {
        let path = std::fs::canonicalize(path).ok()?;
        let mut files = vec![(path.clone(), FileId::of(&path).ok()?)];
        let wal = sibling(&path, "-wal");
        if let Ok(id) = FileId::of(&wal) {
            files.push((wal, id));
        }
        Some(Self { files })
    }

    /// Fails when a path no longer names the file it named at open.
    pub(crate) fn check(&self) -> Result<(), InboxError> {
        for (path, id) in &self.files {
            match FileId::of(path) {
                Ok(now) if now == *id => {}
                _ => {
                    return Err(InboxError::new(
                        ErrorKind::Storage,
                        format!(
                            "inbox file {} was deleted or replaced while open, so what was just \
                             written went to a file nobody will read; restart the receiver so \
                             it opens the file again",
                            path.display()
                        ),
                    ))
                }
            }
        }
        Ok(())
    }
}

/// A `file:` URI for an absolute `path` with `query` (e.g. `immutable=1`),
/// every byte but unreserved ones and `/` percent-encoded.
pub(crate) fn uri(path: &Path, query: &str) -> String {
    use std::fmt::Write as _;
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt as _;
        path.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = {
        let text = path.to_string_lossy().replace('\\', "/");
        if text.starts_with('/') {
            text.into_bytes()
        } else {
            format!("/{text}").into_bytes()
        }
    };
    let mut out = String::from("file:");
    for byte in bytes {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out.push('?');
    out.push_str(query);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_encode_what_sqlite_would_read_as_syntax() {
        let cases = [
            ("/tmp/inbox.sqlite", "file:/tmp/inbox.sqlite?immutable=1"),
            ("/a b/c?d#e%f", "file:/a%20b/c%3Fd%23e%25f?immutable=1"),
            ("/é", "file:/%C3%A9?immutable=1"),
        ];
        for (path, want) in cases {
            assert_eq!(uri(Path::new(path), "immutable=1"), want, "{path}");
        }
    }

    #[test]
    fn siblings_append_to_the_file_name() {
        assert_eq!(
            sibling(Path::new("/x/inbox.sqlite"), "-wal"),
            PathBuf::from("/x/inbox.sqlite-wal")
        );
    }
}
