//! What a plugin returns when it fails.

use std::fmt;

use abi_stable::StableAbi;
use abi_stable::std_types::RString;

/// The kind of a [`PluginError`].
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The plugin could not process the frame (or flush).
    Failed,
    /// The configuration string was rejected.
    Config,
    /// The plugin's code panicked; the panic was caught at the boundary.
    Panicked,
}

/// An error a plugin returns across the boundary: a kind and a message.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    kind: ErrorKind,
    message: RString,
}

impl PluginError {
    /// A failure to process a frame.
    pub fn new(message: impl fmt::Display) -> Self {
        Self::with_kind(ErrorKind::Failed, message)
    }

    /// A configuration the plugin rejects.
    pub fn config(message: impl fmt::Display) -> Self {
        Self::with_kind(ErrorKind::Config, message)
    }

    /// A caught panic (the export machinery makes these; plugins do not need to).
    pub fn panicked(message: impl fmt::Display) -> Self {
        Self::with_kind(ErrorKind::Panicked, message)
    }

    fn with_kind(kind: ErrorKind, message: impl fmt::Display) -> Self {
        Self {
            kind,
            message: RString::from(message.to_string()),
        }
    }

    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether the error is a caught panic.
    pub fn is_panic(&self) -> bool {
        self.kind == ErrorKind::Panicked
    }

    /// The message.
    pub fn message(&self) -> &str {
        self.message.as_str()
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::Failed => f.write_str(&self.message),
            ErrorKind::Config => write!(f, "invalid configuration: {}", self.message),
            ErrorKind::Panicked => write!(f, "panicked: {}", self.message),
        }
    }
}

impl std::error::Error for PluginError {}
