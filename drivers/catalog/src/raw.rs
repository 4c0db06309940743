//! The catalog file format as written, before validation. Values that need a clear error of
//! their own are kept as text with their span, so the validator can name the line.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use toml::Spanned;

/// One `[[carrier]]` table. Every field is optional here so the validator, not serde, reports
/// what is missing, in its own words.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEntry {
    pub id: Option<Spanned<String>>,
    pub manufacturer: Option<Spanned<String>>,
    pub model: Option<Spanned<String>>,
    pub interface: Option<Spanned<String>>,
    #[serde(default)]
    pub applications: Vec<Spanned<String>>,
    #[serde(default)]
    pub usb: Vec<Spanned<RawUsb>>,
    #[serde(default)]
    pub atr: Vec<Spanned<RawAtr>>,
    #[serde(default)]
    pub readers: Vec<Spanned<String>>,
    #[serde(default)]
    pub aids: Vec<Spanned<String>>,
    pub fallback: Option<Spanned<String>>,
    #[serde(default)]
    pub modules: RawModules,
    #[serde(default)]
    pub generic_modules: Vec<Spanned<String>>,
    pub hid_framing: Option<Spanned<String>>,
    pub sm2: Option<Spanned<RawSm2>>,
    pub pin: Option<Spanned<RawPin>>,
    #[serde(default)]
    pub certification: Vec<RawCertification>,
    pub compliance: Option<RawCompliance>,
    #[serde(default)]
    pub sources: Vec<String>,
}

/// `{ vendor = 0x1050, product = 0x0407 }`; range-checked by the validator.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUsb {
    pub vendor: i64,
    pub product: i64,
}

/// An ATR pattern: pcsc-tools text, or `{ value, mask }`.
#[derive(Debug)]
pub(crate) enum RawAtr {
    Text(String),
    Masked { value: String, mask: String },
}

impl<'de> Deserialize<'de> for RawAtr {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawAtrVisitor)
    }
}

struct RawAtrVisitor;

impl<'de> Visitor<'de> for RawAtrVisitor {
    type Value = RawAtr;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an ATR pattern: a string like \"3B 8F .. 01\" or a table { value = \"..\", mask = \"..\" }")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawAtr, E> {
        Ok(RawAtr::Text(v.to_string()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawAtr, A::Error> {
        let mut value = None;
        let mut mask = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "value" => value = Some(map.next_value::<String>()?),
                "mask" => mask = Some(map.next_value::<String>()?),
                other => return Err(de::Error::unknown_field(other, &["value", "mask"])),
            }
        }
        match (value, mask) {
            (Some(value), Some(mask)) => Ok(RawAtr::Masked { value, mask }),
            (None, _) => Err(de::Error::missing_field("value")),
            (_, None) => Err(de::Error::missing_field("mask")),
        }
    }
}

/// `modules = { linux = [..], windows = [..], macos = [..] }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawModules {
    #[serde(default)]
    pub linux: Vec<Spanned<String>>,
    #[serde(default)]
    pub windows: Vec<Spanned<String>>,
    #[serde(default)]
    pub macos: Vec<Spanned<String>>,
}

/// `[carrier.sm2]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSm2 {
    pub mechanism: Option<i64>,
    pub key_type: Option<i64>,
    pub signs: Option<Spanned<String>>,
    pub source: Option<String>,
}

/// `[carrier.pin]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPin {
    pub min_length: Option<i64>,
    pub max_length: Option<i64>,
    pub tries: Option<i64>,
    pub source: Option<String>,
}

/// `[[carrier.certification]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCertification {
    pub scheme: String,
    pub number: Option<String>,
    pub source: String,
}

/// `[carrier.compliance]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCompliance {
    pub compliant: bool,
    pub reason: String,
}
