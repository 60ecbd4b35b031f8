//! Reading a configuration file: the one way the command line, the server and the Lambda do it,
//! so that a bad file gets the same message from each, naming the file and then the field.

use std::path::{Path, PathBuf};

use crate::{Config, ConfigError};

/// Why a configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {source}", path.display())]
    Invalid { path: PathBuf, source: ConfigError },
}

/// Read and validate the configuration at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigFileError> {
    let bytes =
        std::fs::read(path).map_err(|source| ConfigFileError::Read { path: path.to_owned(), source })?;
    parse(path, &bytes)
}

/// Validate a configuration file's content, already read from `path`.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Config, ConfigFileError> {
    Config::from_slice(bytes).map_err(|source| ConfigFileError::Invalid { path: path.to_owned(), source })
}
