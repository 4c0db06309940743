//! One carrier model as the catalog knows it: how to recognise it, how to reach it, how it signs
//! and whether it is an acceptable (compliant) carrier. Every fact carries its source.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::atr::AtrPattern;

/// How ukey reaches a carrier of this model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Interface {
    /// A smart card (or a token that looks like one) behind PC/SC: USB CCID devices, card
    /// readers, virtual readers.
    Ccid,
    /// A HID device carrying APDUs in HID reports (see [`HidFraming`]).
    Hid,
    /// Reached only through the vendor's PKCS#11 module.
    Pkcs11Module,
    /// ukey's built-in software token.
    Software,
}

impl Interface {
    /// Every interface with its catalog spelling, for parsing and error messages.
    pub const ALL: [(Interface, &'static str); 4] = [
        (Interface::Ccid, "ccid"),
        (Interface::Hid, "hid"),
        (Interface::Pkcs11Module, "pkcs11-module"),
        (Interface::Software, "software"),
    ];

    /// The catalog spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Ccid => "ccid",
            Interface::Hid => "hid",
            Interface::Pkcs11Module => "pkcs11-module",
            Interface::Software => "software",
        }
    }

    /// Parses the catalog spelling.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(i, _)| *i)
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The card application that holds the certificates and keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Application {
    /// NIST SP 800-73 PIV.
    Piv,
    /// OpenPGP card.
    Openpgp,
    /// A PKCS#15 file layout (e.g. written by OpenSC).
    Pkcs15,
    /// The vendor's own application, reached through its PKCS#11 module or an OpenSC driver.
    Vendor,
}

impl Application {
    /// Every application with its catalog spelling.
    pub const ALL: [(Application, &'static str); 4] = [
        (Application::Piv, "piv"),
        (Application::Openpgp, "openpgp"),
        (Application::Pkcs15, "pkcs15"),
        (Application::Vendor, "vendor"),
    ];

    /// The catalog spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Application::Piv => "piv",
            Application::Openpgp => "openpgp",
            Application::Pkcs15 => "pkcs15",
            Application::Vendor => "vendor",
        }
    }

    /// Parses the catalog spelling.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(a, _)| *a)
    }
}

impl fmt::Display for Application {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// USB vendor and product id of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct UsbId {
    /// Vendor id.
    pub vendor: u16,
    /// Product id.
    pub product: u16,
}

impl fmt::Display for UsbId {
    /// `lsusb` form: `1050:0407`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:04x}", self.vendor, self.product)
    }
}

/// How APDUs travel in HID reports for a HID carrier; the HID driver picks its framing by this.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HidFraming {
    /// CTAPHID init/continuation packets, APDUs in CTAPHID_MSG.
    CtaphidMsg,
    /// A vendor framing, by name (`vendor:NAME` in the catalog).
    Vendor(String),
}

impl HidFraming {
    /// Parses `ctaphid-msg` or `vendor:NAME` (NAME: lower-case letters, digits, `-`).
    pub fn from_name(text: &str) -> Option<Self> {
        if text == "ctaphid-msg" {
            return Some(HidFraming::CtaphidMsg);
        }
        let name = text.strip_prefix("vendor:")?;
        let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        valid.then(|| HidFraming::Vendor(name.to_string()))
    }
}

impl fmt::Display for HidFraming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HidFraming::CtaphidMsg => f.write_str("ctaphid-msg"),
            HidFraming::Vendor(name) => write!(f, "vendor:{name}"),
        }
    }
}

impl Serialize for HidFraming {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What a carrier wants to be given when it makes an SM2 signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sm2Input {
    /// The message; the carrier computes Z and SM3 itself.
    Message,
    /// SM3(Z ‖ M), computed by the core (GM/T 0009 Z value).
    Digest,
    /// SM3(M) without Z (non-standard carriers).
    DigestWithoutZ,
}

impl Sm2Input {
    /// Every form with its catalog spelling.
    pub const ALL: [(Sm2Input, &'static str); 3] =
        [(Sm2Input::Message, "message"), (Sm2Input::Digest, "digest"), (Sm2Input::DigestWithoutZ, "digest-without-z")];

    /// Parses the catalog spelling.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(s, _)| *s)
    }
}

/// How a carrier does SM2, for carriers that do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sm2Conventions {
    /// Vendor PKCS#11 mechanism number for SM2 signing, when the vendor defines one.
    pub mechanism: Option<u64>,
    /// Vendor PKCS#11 key type number for SM2 keys.
    pub key_type: Option<u64>,
    /// What input the carrier signs.
    pub signs: Sm2Input,
    /// Where these facts come from.
    pub source: String,
}

/// The PIN rules of a model, so ukey can check a new PIN before the card rejects it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinPolicy {
    /// Shortest PIN accepted.
    pub min_length: Option<u8>,
    /// Longest PIN accepted.
    pub max_length: Option<u8>,
    /// Wrong tries before the PIN locks (factory default).
    pub tries: Option<u8>,
    /// Where these facts come from.
    pub source: String,
}

/// A certification of the model (e.g. a commercial cryptography product certificate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Certification {
    /// Scheme and level.
    pub scheme: String,
    /// Certificate number, where published.
    pub number: Option<String>,
    /// Where it is published.
    pub source: String,
}

/// Whether the model is acceptable as a certificate carrier under the custody rules, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Compliance {
    /// True when the model is a compliant carrier.
    pub compliant: bool,
    /// Why, in words a helpdesk can repeat.
    pub reason: String,
}

/// Vendor PKCS#11 module file names by platform.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Modules {
    /// Linux shared objects (`libvendor.so`).
    pub linux: Vec<String>,
    /// Windows DLLs.
    pub windows: Vec<String>,
    /// macOS dylibs.
    pub macos: Vec<String>,
}

impl Modules {
    /// All module names of every platform.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        self.linux.iter().chain(&self.windows).chain(&self.macos).map(String::as_str)
    }
}

/// Which catalog layer an entry came from; a higher layer replaces a lower one's entry by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// Built into ukey.
    Seed,
    /// `/etc/ukey/catalog.d`: the unit's entries.
    System,
    /// `~/.config/ukey/catalog.d`: the holder's entries.
    User,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Seed => "seed",
            Layer::System => "system",
            Layer::User => "user",
        })
    }
}

/// Where an entry was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// Catalog layer.
    pub layer: Layer,
    /// The file (`seed:NAME.toml` for the embedded seed).
    pub file: PathBuf,
    /// Line of the entry's `[[carrier]]` header.
    pub line: usize,
}

/// One carrier model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Unique id (`vendor-model`), used in carrier info, custody records and overrides.
    pub id: String,
    /// Manufacturer.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// How ukey reaches it.
    pub interface: Interface,
    /// Card applications holding certificates and keys.
    pub applications: Vec<Application>,
    /// USB ids of the device.
    pub usb: Vec<UsbId>,
    /// ATR patterns of the card or token.
    pub atr: Vec<AtrPattern>,
    /// PC/SC reader-name prefixes that identify the carrier (virtual readers).
    pub readers: Vec<String>,
    /// Application ids (AIDs) the carrier is found by.
    #[serde(serialize_with = "serialize_aids")]
    pub aids: Vec<Vec<u8>>,
    /// The application this entry stands for when a card matches no model (generic entries).
    pub fallback: Option<Application>,
    /// The vendor's own PKCS#11 modules: a module file name identifies the model.
    pub modules: Modules,
    /// Shared PKCS#11 modules (OpenSC) that also serve the model; they identify no model.
    pub generic_modules: Vec<String>,
    /// HID framing, for HID carriers.
    pub hid_framing: Option<HidFraming>,
    /// SM2 conventions, when the carrier does SM2.
    pub sm2: Option<Sm2Conventions>,
    /// PIN rules.
    pub pin: Option<PinPolicy>,
    /// Certifications.
    pub certification: Vec<Certification>,
    /// Compliant carrier or not, and why.
    pub compliance: Compliance,
    /// Sources of the entry's facts.
    pub sources: Vec<String>,
    /// Where the entry was written.
    pub origin: Origin,
}

impl Entry {
    /// `Manufacturer Model`, for people.
    pub fn display_name(&self) -> String {
        format!("{} {}", self.manufacturer, self.model)
    }

    /// True when the entry is a compliant carrier.
    pub fn is_compliant(&self) -> bool {
        self.compliance.compliant
    }
}

fn serialize_aids<S: serde::Serializer>(aids: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(aids.len()))?;
    for aid in aids {
        let text: String = aid.iter().map(|b| format!("{b:02X}")).collect();
        seq.serialize_element(&text)?;
    }
    seq.end()
}
