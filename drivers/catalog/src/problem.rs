//! What can be wrong with catalog files, reported with file, line and entry so the person who
//! wrote the file can fix it. A problem never stops the rest of the catalog from loading.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::atr::AtrPatternError;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something was loaded, but not as the author probably meant (e.g. a shadowed USB id).
    Warning,
    /// A file or entry was skipped.
    Error,
}

/// What is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProblemKind {
    /// The file or directory could not be read.
    #[error("cannot read it: {0}")]
    Unreadable(String),
    /// The file is too big to be a catalog file.
    #[error("it is {size} bytes, more than the {limit} a catalog file may have; split it")]
    TooLarge {
        /// Size of the file.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The file is not valid TOML; nothing in it was loaded.
    #[error("not valid TOML, the whole file is skipped: {0}")]
    Syntax(String),
    /// A top-level key other than `carrier`.
    #[error("unknown top-level key `{0}` (entries go in [[carrier]] tables); ignored")]
    UnknownTopLevel(String),
    /// `carrier` is not an array of tables.
    #[error("`carrier` must be written as [[carrier]] tables")]
    CarrierNotTables,
    /// A value of the wrong type or an unknown field in an entry.
    #[error("{0}")]
    Field(String),
    /// A required field is absent.
    #[error("missing required field `{0}`")]
    MissingField(&'static str),
    /// A text field is empty.
    #[error("field `{0}` is empty")]
    EmptyField(&'static str),
    /// The id has characters outside `a-z 0-9 -`.
    #[error("id `{0}` must be lower-case letters, digits and '-' (e.g. `vendor-model`)")]
    BadId(String),
    /// Two entries with one id in the same layer.
    #[error("duplicate id `{id}`: already defined at {first}; this entry is skipped")]
    DuplicateId {
        /// The id.
        id: String,
        /// `file:line` of the entry that was kept.
        first: String,
    },
    /// An ATR pattern that cannot be used.
    #[error("bad ATR pattern `{pattern}`: {error}")]
    BadAtr {
        /// The pattern as written.
        pattern: String,
        /// Why it is bad.
        error: AtrPatternError,
    },
    /// An interface name ukey does not know.
    #[error("unknown interface `{0}`; expected one of: ccid, hid, pkcs11-module, software")]
    UnknownInterface(String),
    /// An application name ukey does not know.
    #[error("unknown application `{0}`; expected one of: piv, openpgp, pkcs15, vendor")]
    UnknownApplication(String),
    /// An SM2 input form ukey does not know.
    #[error("unknown SM2 input `{0}`; expected one of: message, digest, digest-without-z")]
    UnknownSm2Input(String),
    /// A USB id outside 0..=0xFFFF.
    #[error("USB {field} id {value} is out of range (0x0000 to 0xFFFF)")]
    UsbIdOutOfRange {
        /// `vendor` or `product`.
        field: &'static str,
        /// The value written.
        value: i64,
    },
    /// A PIN policy number out of range or inconsistent.
    #[error("PIN policy: {0}")]
    BadPinPolicy(String),
    /// An AID that is not 5 to 16 hex bytes.
    #[error("bad AID `{0}`: write 5 to 16 bytes in hex, e.g. A000000308000010000100")]
    BadAid(String),
    /// A HID framing name ukey does not know.
    #[error("unknown HID framing `{0}`; expected ctaphid-msg or vendor:NAME")]
    UnknownHidFraming(String),
    /// A HID entry without a framing, or a framing on a non-HID entry.
    #[error("{0}")]
    HidFramingMismatch(&'static str),
    /// A negative SM2 mechanism or key type number.
    #[error("SM2 {field} {value} is negative; PKCS#11 numbers are unsigned")]
    NegativeNumber {
        /// The field.
        field: &'static str,
        /// The value written.
        value: i64,
    },
    /// A module name with a directory part.
    #[error("module `{0}` must be a file name without a directory")]
    ModulePath(String),
    /// A hardware entry with nothing to recognise it by.
    #[error(
        "the entry has no identifier: give at least one of usb, atr, readers, modules, or fallback (software entries excepted)"
    )]
    NoIdentifier,
    /// An entry without sources.
    #[error("the entry has no `sources`: say where its facts come from")]
    NoSources,
    /// A USB id, module or fallback claimed by two entries; the named entry keeps it.
    #[error("{what} is also claimed by entry `{winner}`, which keeps it")]
    Shadowed {
        /// What is claimed twice (`USB id 1050:0407`, `module libx.so`, ...).
        what: String,
        /// The entry matching wins.
        winner: String,
    },
}

/// One problem with the catalog files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogProblem {
    /// The file (or directory) with the problem.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The entry id, when the problem is in an entry that has one.
    pub entry: Option<String>,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong.
    pub kind: ProblemKind,
}

impl CatalogProblem {
    /// A problem that skipped something.
    pub fn error(file: impl Into<PathBuf>, line: Option<usize>, entry: Option<String>, kind: ProblemKind) -> Self {
        CatalogProblem { file: file.into(), line, entry, severity: Severity::Error, kind }
    }

    /// A problem that loaded something, perhaps not as meant.
    pub fn warning(file: impl Into<PathBuf>, line: Option<usize>, entry: Option<String>, kind: ProblemKind) -> Self {
        CatalogProblem { file: file.into(), line, entry, severity: Severity::Warning, kind }
    }

    /// True for problems that skipped a file or an entry.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// `file:line: error: entry `id`: what`, the shape compilers use, so editors can jump to it.
impl fmt::Display for CatalogProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, ": {severity}: ")?;
        if let Some(id) = &self.entry {
            write!(f, "entry `{id}`: ")?;
        }
        write!(f, "{}", self.kind)
    }
}

impl Serialize for CatalogProblem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("CatalogProblem", 5)?;
        st.serialize_field("file", &self.file)?;
        st.serialize_field("line", &self.line)?;
        st.serialize_field("entry", &self.entry)?;
        st.serialize_field("severity", &self.severity)?;
        st.serialize_field("message", &self.kind.to_string())?;
        st.end()
    }
}
