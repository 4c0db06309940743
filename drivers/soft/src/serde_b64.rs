//! Serde helpers that store byte fields of the token file as standard base64 text.

use serde::{Deserialize, Deserializer, Serializer};
use ukey_api::crypto::encoding::{base64_decode, base64_encode};

/// Writes bytes as base64.
pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&base64_encode(v))
}

/// Reads base64 into bytes.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    base64_decode(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}
