//! Rules for token and object labels, checked before anything is written.

use ukey_api::{Error, Result};

/// Longest token label (the PKCS#11 token label field is 32 bytes).
pub const MAX_TOKEN_LABEL: usize = 32;

/// Longest object label.
pub const MAX_OBJECT_LABEL: usize = 128;

/// A token label: 1 to 32 characters, not blank, no control characters.
pub fn check_token_label(label: &str) -> Result<()> {
    check(label, "token label", MAX_TOKEN_LABEL)
}

/// An object label: 1 to 128 characters, not blank, no control characters.
pub fn check_object_label(label: &str) -> Result<()> {
    check(label, "object label", MAX_OBJECT_LABEL)
}

fn check(label: &str, what: &str, max: usize) -> Result<()> {
    if label.trim().is_empty() {
        return Err(Error::InvalidInput(format!("the {what} is empty; give a name such as `alice`")));
    }
    if label.chars().count() > max {
        return Err(Error::InvalidInput(format!("the {what} `{label}` is longer than {max} characters")));
    }
    if label.chars().any(char::is_control) {
        return Err(Error::InvalidInput(format!("the {what} contains control characters")));
    }
    Ok(())
}
