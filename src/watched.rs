//! Files read again only when their content changes.
//!
//! Content, not modification time, is compared: the kubelet updates a mounted ConfigMap or Secret
//! by swapping a symlink (`..data`), which leaves the files' own times unchanged.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// One or more files and the hash of their content when last read.
#[derive(Debug)]
pub struct Watched {
    paths: Vec<PathBuf>,
    seen: Option<[u8; 32]>,
}

/// A file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct ReadError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl Watched {
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Self {
        Watched { paths: paths.into_iter().map(Path::to_owned).collect(), seen: None }
    }

    /// Every file's content, in order, if any changed since the last call (always on the first).
    ///
    /// What was read is remembered even when the caller then refuses it, so that a bad file is
    /// reported once, not on every tick; the next write is tried again.
    pub fn read_if_changed(&mut self) -> Result<Option<Vec<Vec<u8>>>, ReadError> {
        let contents = self
            .paths
            .iter()
            .map(|path| std::fs::read(path).map_err(|source| ReadError { path: path.clone(), source }))
            .collect::<Result<Vec<_>, _>>()?;
        // Each content's length first, so that no two splits of the same bytes hash alike.
        let digest = contents.iter().fold(Sha256::new(), |hash, content| {
            hash.chain_update((content.len() as u64).to_le_bytes()).chain_update(content)
        });
        let digest: [u8; 32] = digest.finalize().into();
        if self.seen == Some(digest) {
            return Ok(None);
        }
        self.seen = Some(digest);
        Ok(Some(contents))
    }
}
