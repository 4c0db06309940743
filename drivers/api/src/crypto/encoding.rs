//! Text encodings of binary values used in JSON and files.

use base64ct::{Base64, Encoding};

/// Standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    Base64::encode_string(bytes)
}

/// Decodes standard base64 with padding; surrounding whitespace is ignored.
pub fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    Base64::decode_vec(text.trim()).map_err(|e| format!("invalid base64: {e}"))
}
