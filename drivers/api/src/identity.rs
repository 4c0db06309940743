//! Who a carrier is: its kind, model and serial, and a stable id that survives re-insertion.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The family of driver that reaches a carrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CarrierKind {
    /// The built-in software token (not a hardware carrier).
    Soft,
    /// A token behind a vendor PKCS#11 module.
    Pkcs11,
    /// A smart card in a PC/SC reader, spoken to in APDUs.
    Pcsc,
    /// A HID token carrying APDUs in HID reports.
    Hid,
}

impl CarrierKind {
    /// The lower-case name used in ids, URIs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            CarrierKind::Soft => "soft",
            CarrierKind::Pkcs11 => "pkcs11",
            CarrierKind::Pcsc => "pcsc",
            CarrierKind::Hid => "hid",
        }
    }
}

impl fmt::Display for CarrierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A carrier's stable identity: the same physical key gets the same id on every insertion, so
/// custody records, audit entries and hot-plug events can refer to it.
///
/// Built from the kind and identifying parts (serial first), joined with `:`; parts have `:`
/// and control characters replaced so the id stays one printable token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CarrierId(String);

impl CarrierId {
    /// Builds an id from the kind and the parts that identify the carrier within it.
    pub fn new(kind: CarrierKind, parts: &[&str]) -> Self {
        let mut id = kind.as_str().to_string();
        for part in parts {
            id.push(':');
            id.extend(part.trim().chars().map(|c| if c == ':' || c.is_control() { '_' } else { c }));
        }
        CarrierId(id)
    }

    /// Re-creates an id from its string form (for ids that come back from clients or records).
    pub fn from_string(s: impl Into<String>) -> Self {
        CarrierId(s.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CarrierId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// USB vendor and product id of the device behind a carrier, for catalog matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UsbId {
    /// USB vendor id.
    pub vendor: u16,
    /// USB product id.
    pub product: u16,
}

/// Everything a person or policy needs to know about which carrier this is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarrierInfo {
    /// Stable id (see [`CarrierId`]).
    pub id: CarrierId,
    /// Driver family.
    pub kind: CarrierKind,
    /// The token label people see.
    pub label: String,
    /// Manufacturer as the carrier reports it.
    pub manufacturer: String,
    /// Model as the carrier reports it.
    pub model: String,
    /// Serial number as the carrier reports it.
    pub serial: String,
    /// Where it is reached: soft-token directory, module path and slot, reader name, HID path.
    pub location: String,
    /// The card's answer-to-reset, for PC/SC and HID carriers.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex_opt")]
    pub atr: Option<Vec<u8>>,
    /// USB ids of the device, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usb: Option<UsbId>,
    /// Id of the matching carrier-catalog entry, when the driver found one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_entry: Option<String>,
    /// True for carriers whose keys live in host files (the software token): never a compliant
    /// hardware carrier, whatever the catalog says.
    pub software: bool,
    /// The carrier is write-protected.
    pub read_only: bool,
    /// The carrier has been initialised (a factory-fresh token has not).
    pub initialized: bool,
}

impl CarrierInfo {
    /// Short human name: label, model and serial.
    pub fn display_name(&self) -> String {
        format!("{} ({} {}, serial {})", self.label, self.manufacturer, self.model, self.serial)
    }
}

mod hex_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(bytes) => s.serialize_str(&hex::encode_upper(bytes)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| hex::decode(s).map_err(serde::de::Error::custom)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_single_token() {
        let a = CarrierId::new(CarrierKind::Pcsc, &["Virtual PCD 00:00", "1234"]);
        assert_eq!(a.as_str(), "pcsc:Virtual PCD 00_00:1234");
        assert_eq!(a, CarrierId::new(CarrierKind::Pcsc, &["Virtual PCD 00:00", "1234"]));
    }
}
