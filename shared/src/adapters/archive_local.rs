//! The export archive in a local directory (the [`ExportArchive`] port), for a laptop:
//! `OFFRAMP_EXPORT_DIR`, default `.offramp/exports` beside the SQLite audit trail.
//!
//! A file is written under a temporary name, synced, and renamed into place only when
//! complete; an existing file is never overwritten, and the stored file is made
//! read-only. There is no retention lock here: the directory is as safe as the disk.

use std::io::Write;
use std::path::PathBuf;

use crate::domain::{ArchivedExport, ExportObject};
use crate::error::ArchiveError;
use crate::ports::{ExportArchive, async_trait};

pub struct LocalDirArchive {
    dir: PathBuf,
}

impl LocalDirArchive {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn write(&self, object: &ExportObject) -> Result<ArchivedExport, ArchiveError> {
        let key = object.key();
        let path = self.dir.join(&key);
        let failed = |e: std::io::Error| ArchiveError::Store {
            store: self.dir.display().to_string(),
            message: format!("{}: {e}", path.display()),
        };
        if path.exists() {
            return Err(failed(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "already archived")));
        }
        let parent = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(parent).map_err(failed)?;
        let partial = path.with_extension("zip.partial");
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&partial).map_err(failed)?;
        let written = file.write_all(&object.bytes).and_then(|()| file.sync_all());
        if let Err(e) = written {
            let _ = std::fs::remove_file(&partial);
            return Err(failed(e));
        }
        std::fs::rename(&partial, &path).map_err(failed)?;
        let mut permissions = std::fs::metadata(&path).map_err(failed)?.permissions();
        permissions.set_readonly(true);
        std::fs::set_permissions(&path, permissions).map_err(failed)?;
        Ok(ArchivedExport {
            store: "local".into(),
            bucket: self.dir.display().to_string(),
            key,
            version_id: None,
            sha256: object.sha256(),
            size: object.bytes.len() as u64,
            retain_until: None,
        })
    }
}

#[async_trait]
impl ExportArchive for LocalDirArchive {
    async fn store(&self, object: &ExportObject) -> Result<ArchivedExport, ArchiveError> {
        self.write(object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_export_is_stored_once_read_only_with_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let archive = LocalDirArchive::new(dir.path());
        let object = ExportObject {
            organization_id: "9002".into(),
            export_id: "7".into(),
            operation_id: "op-1".into(),
            bytes: b"PK\x03\x04 an export".to_vec(),
        };
        let stored = archive.store(&object).await.unwrap();
        let path = dir.path().join(&stored.key);
        assert_eq!(std::fs::read(&path).unwrap(), object.bytes);
        assert!(std::fs::metadata(&path).unwrap().permissions().readonly());
        assert_eq!((stored.size, stored.sha256.len()), (object.bytes.len() as u64, 64));
        assert!(archive.store(&object).await.is_err(), "never overwritten");
    }
}
