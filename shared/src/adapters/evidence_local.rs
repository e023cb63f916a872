//! The evidence store in a local directory (the [`EvidenceStore`] port), for a laptop:
//! `OFFRAMP_EVIDENCE_DIR`, default `.offramp/evidence` beside the SQLite audit trail
//! (docs/evidence.md#where-it-is-stored).
//!
//! A report is written under a temporary name, synced and renamed into place, so a reader
//! never sees half a document. Storing again replaces it: the report is rendered from the
//! append-only trail, which stays the record; the file is its printable copy.

use std::io::Write;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::error::EvidenceError;
use crate::ports::{EvidenceLocation, EvidenceStore, async_trait, evidence_key};

pub struct LocalDirEvidence {
    dir: PathBuf,
}

impl LocalDirEvidence {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn failed(&self, path: &std::path::Path, e: std::io::Error) -> EvidenceError {
        EvidenceError::Store { store: self.dir.display().to_string(), message: format!("{}: {e}", path.display()) }
    }

    fn write(&self, operation_id: &str, html: &str) -> Result<EvidenceLocation, EvidenceError> {
        let path = self.dir.join(evidence_key(operation_id)?);
        let parent = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(parent).map_err(|e| self.failed(parent, e))?;
        let partial = path.with_extension(format!("html.{}.partial", uuid::Uuid::now_v7().simple()));
        let written = std::fs::File::create(&partial)
            .and_then(|mut file| file.write_all(html.as_bytes()).and_then(|()| file.sync_all()))
            .and_then(|()| std::fs::rename(&partial, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&partial);
            return Err(self.failed(&path, e));
        }
        Ok(EvidenceLocation {
            store: "local".into(),
            location: path.display().to_string(),
            version_id: None,
            sha256: hex::encode(Sha256::digest(html.as_bytes())),
            size: html.len() as u64,
        })
    }
}

#[async_trait]
impl EvidenceStore for LocalDirEvidence {
    async fn put(&self, operation_id: &str, html: &str) -> Result<EvidenceLocation, EvidenceError> {
        self.write(operation_id, html)
    }

    async fn get(&self, operation_id: &str) -> Result<Option<String>, EvidenceError> {
        let path = self.dir.join(evidence_key(operation_id)?);
        match std::fs::read_to_string(&path) {
            Ok(html) => Ok(Some(html)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.failed(&path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0190c3a0-0000-7000-8000-000000000001";

    #[tokio::test]
    async fn a_report_is_stored_read_back_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDirEvidence::new(dir.path());
        assert_eq!(store.get(ID).await.unwrap(), None);
        let stored = store.put(ID, "<p>first</p>").await.unwrap();
        assert_eq!((stored.store.as_str(), stored.size, stored.sha256.len()), ("local", 12, 64));
        assert!(stored.location.ends_with(&format!("evidence/{ID}.html")), "{stored:?}");
        store.put(ID, "<p>second</p>").await.unwrap();
        assert_eq!(store.get(ID).await.unwrap().as_deref(), Some("<p>second</p>"));
        let files = std::fs::read_dir(dir.path().join("evidence")).unwrap().count();
        assert_eq!(files, 1, "no partial file is left behind");
    }

    #[tokio::test]
    async fn an_id_that_is_not_a_uuid_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDirEvidence::new(dir.path().join("inner"));
        let refused = store.put("../../escape", "<p>x</p>").await.unwrap_err();
        assert!(matches!(refused, EvidenceError::InvalidOperationId { .. }), "{refused}");
        assert!(!dir.path().join("inner").exists(), "nothing was written");
    }
}
