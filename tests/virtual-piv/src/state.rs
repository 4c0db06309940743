//! The card's persistent state (what a real card keeps in EEPROM) and its file form, so a card
//! can be removed, its process restarted, and the same card inserted again.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::config::{CardConfig, pad_reference};
use crate::keys::{SlotKey, StoredKey};
use crate::mgmt::MgmtAlgorithm;
use crate::objects;

/// When a slot's private key needs the PIN (the YubiKey PIN policy vocabulary; SP 800-73-4
/// Part 1 Table 4b sets 9C to "always").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PinPolicy {
    /// No PIN needed (card authentication key 9E).
    Never,
    /// The PIN verified once in this session is enough.
    Once,
    /// A VERIFY must come right before each use (digital signature key 9C).
    Always,
}

impl PinPolicy {
    /// The SP 800-73-4 default for a key reference.
    pub fn default_for(slot: u8) -> Self {
        match slot {
            0x9E => PinPolicy::Never,
            0x9C => PinPolicy::Always,
            _ => PinPolicy::Once,
        }
    }
}

/// A reference data object (PIN or PUK) with its retry counter.
#[derive(Clone, Serialize, Deserialize)]
pub struct RetryCounter {
    /// The reference value padded with FF to 8 bytes.
    #[serde(with = "hex_secret_array")]
    pub value: Zeroizing<[u8; 8]>,
    /// The retry limit the counter is reset to.
    pub limit: u8,
    /// Tries left; zero means blocked.
    pub left: u8,
}

impl RetryCounter {
    /// A fresh counter holding `value`.
    pub fn new(value: &[u8], limit: u8) -> Self {
        RetryCounter { value: pad_reference(value), limit, left: limit }
    }

    /// Whether the counter has reached zero.
    pub fn is_blocked(&self) -> bool {
        self.left == 0
    }

    /// Constant-time comparison with a padded candidate.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        candidate.len() == 8 && self.value.iter().zip(candidate).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// A key in a slot with its PIN policy.
#[derive(Debug)]
pub struct SlotEntry {
    /// The private key.
    pub key: SlotKey,
    /// When the key needs the PIN.
    pub pin_policy: PinPolicy,
}

/// Everything a card remembers across power cycles.
pub struct CardState {
    /// Factory settings, used again by the reset (INS FB).
    pub factory: CardConfig,
    /// The PIV application PIN (key reference 80).
    pub pin: RetryCounter,
    /// The PUK (key reference 81).
    pub puk: RetryCounter,
    /// The management key algorithm.
    pub mgmt_algorithm: MgmtAlgorithm,
    /// The management key.
    pub mgmt_key: Zeroizing<Vec<u8>>,
    /// Data objects by tag (the content inside tag 53).
    pub objects: BTreeMap<u32, Vec<u8>>,
    /// Private keys by key reference.
    pub keys: BTreeMap<u8, SlotEntry>,
}

impl CardState {
    /// A new card as it leaves the factory.
    pub fn new(factory: CardConfig) -> Self {
        CardState {
            pin: RetryCounter::new(&factory.pin, factory.pin_tries),
            puk: RetryCounter::new(&factory.puk, factory.puk_tries),
            mgmt_algorithm: factory.mgmt_algorithm,
            mgmt_key: factory.mgmt_key.clone(),
            objects: objects::factory_objects(&factory.guid),
            keys: BTreeMap::new(),
            factory,
        }
    }

    /// Reads a state file written by [`CardState::save`].
    pub fn load(path: &Path) -> Result<Self, StateError> {
        let text = Zeroizing::new(fs::read_to_string(path).map_err(|e| StateError::Io(path.display().to_string(), e))?);
        let file: StateFile =
            serde_json::from_str(&text).map_err(|e| StateError::Format(path.display().to_string(), e))?;
        if file.version != STATE_VERSION {
            return Err(StateError::Version(file.version));
        }
        let mut keys = BTreeMap::new();
        for (slot, stored) in file.keys {
            let slot = u8::from_str_radix(&slot, 16).map_err(|_| StateError::Content(format!("slot {slot}")))?;
            let key =
                SlotKey::from_stored(&stored.key).ok_or_else(|| StateError::Content(format!("key {slot:02X}")))?;
            keys.insert(slot, SlotEntry { key, pin_policy: stored.pin_policy });
        }
        let mut objects = BTreeMap::new();
        for (tag, value) in file.objects {
            let tag = u32::from_str_radix(&tag, 16).map_err(|_| StateError::Content(format!("tag {tag}")))?;
            let value = hex::decode(&value).map_err(|_| StateError::Content(format!("object {tag:X}")))?;
            objects.insert(tag, value);
        }
        Ok(CardState {
            factory: file.factory,
            pin: file.pin,
            puk: file.puk,
            mgmt_algorithm: file.mgmt_algorithm,
            mgmt_key: file.mgmt_key,
            objects,
            keys,
        })
    }

    /// Writes the state atomically (temporary file, fsync, rename) so a crash never leaves half
    /// a card behind.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let io = |e| StateError::Io(path.display().to_string(), e);
        let mut keys = BTreeMap::new();
        for (slot, entry) in &self.keys {
            let key = entry.key.to_stored().map_err(|_| StateError::Content(format!("key {slot:02X}")))?;
            keys.insert(format!("{slot:02X}"), StoredSlot { key, pin_policy: entry.pin_policy });
        }
        let file = StateFile {
            version: STATE_VERSION,
            factory: self.factory.clone(),
            pin: self.pin.clone(),
            puk: self.puk.clone(),
            mgmt_algorithm: self.mgmt_algorithm,
            mgmt_key: self.mgmt_key.clone(),
            objects: self.objects.iter().map(|(t, v)| (format!("{t:X}"), hex::encode(v))).collect(),
            keys,
        };
        let text = Zeroizing::new(
            serde_json::to_string_pretty(&file).map_err(|e| StateError::Format(path.display().to_string(), e))?,
        );
        let tmp = path.with_extension("tmp");
        {
            let mut f = fs::File::create(&tmp).map_err(io)?;
            f.write_all(text.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        fs::rename(&tmp, path).map_err(io)
    }
}

const STATE_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    factory: CardConfig,
    pin: RetryCounter,
    puk: RetryCounter,
    mgmt_algorithm: MgmtAlgorithm,
    #[serde(with = "hex_secret")]
    mgmt_key: Zeroizing<Vec<u8>>,
    objects: BTreeMap<String, String>,
    keys: BTreeMap<String, StoredSlot>,
}

#[derive(Serialize, Deserialize)]
struct StoredSlot {
    key: StoredKey,
    pin_policy: PinPolicy,
}

/// Why a state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// File system error.
    #[error("card state file {0}: {1}")]
    Io(String, std::io::Error),
    /// Not a state file of this fixture.
    #[error("card state file {0} is not valid: {1}")]
    Format(String, serde_json::Error),
    /// Written by an incompatible version of the fixture.
    #[error("card state file has version {0}; delete it to start with a new card")]
    Version(u32),
    /// A key or object in the file does not decode.
    #[error("card state file holds an invalid {0}")]
    Content(String),
}

/// Serde adapter: secret bytes as a hex string.
pub mod hex_secret {
    use serde::{Deserialize, Deserializer, Serializer};
    use zeroize::Zeroizing;

    /// Writes the bytes as hex.
    pub fn serialize<S: Serializer>(value: &Zeroizing<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&Zeroizing::new(hex::encode(value.as_slice())))
    }

    /// Reads hex into zeroizing bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Zeroizing<Vec<u8>>, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        hex::decode(text.as_str()).map(Zeroizing::new).map_err(serde::de::Error::custom)
    }
}

mod hex_secret_array {
    use serde::{Deserialize, Deserializer, Serializer};
    use zeroize::Zeroizing;

    pub fn serialize<S: Serializer>(value: &Zeroizing<[u8; 8]>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&Zeroizing::new(hex::encode(value.as_slice())))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Zeroizing<[u8; 8]>, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        let mut out = Zeroizing::new([0u8; 8]);
        hex::decode_to_slice(text.as_str(), out.as_mut_slice()).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}
