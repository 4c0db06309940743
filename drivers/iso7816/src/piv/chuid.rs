//! The CHUID (SP 800-73-4 Part 1 Table 9) and the discovery object (Table 18): what identifies
//! a card (GUID, FASC-N) and which PIN it wants.

use ukey_api::Result;

use crate::tlv;

/// FASC-N tag in the CHUID.
const TAG_FASCN: u32 = 0x30;
/// GUID tag in the CHUID.
const TAG_GUID: u32 = 0x34;
/// Expiration date tag in the CHUID.
const TAG_EXPIRY: u32 = 0x35;

/// A FASC-N whose agency code is 9999 ("non-federal issuer"), as non-government cards write it.
const NON_FEDERAL_FASCN: [u8; 25] = [
    0xD4, 0xE7, 0x39, 0xDA, 0x73, 0x9C, 0xED, 0x39, 0xCE, 0x73, 0x9D, 0x83, 0x68, 0x58, 0x21, 0x08, 0x42, 0x10, 0x84,
    0x21, 0xC8, 0x42, 0x10, 0xC3, 0xEB,
];

/// The fields of a CHUID ukey uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chuid {
    /// FASC-N, 25 bytes, when present.
    pub fascn: Option<Vec<u8>>,
    /// Card UUID, 16 bytes, when present.
    pub guid: Option<Vec<u8>>,
}

impl Chuid {
    /// Parses a CHUID's content (the value of tag `53`).
    pub fn parse(object: &[u8]) -> Result<Self> {
        let fascn = tlv::find(object, TAG_FASCN)?.filter(|v| !v.is_empty()).map(<[u8]>::to_vec);
        let guid = tlv::find(object, TAG_GUID)?.filter(|v| !v.is_empty()).map(<[u8]>::to_vec);
        Ok(Chuid { fascn, guid })
    }

    /// The card's serial as ukey shows it and builds ids from: the GUID in hex when it is set
    /// (not all zeros), else the FASC-N in hex.
    pub fn serial(&self) -> Option<String> {
        let set = |v: &&Vec<u8>| v.iter().any(|b| *b != 0);
        self.guid.as_ref().filter(set).or(self.fascn.as_ref().filter(set)).map(hex::encode_upper)
    }

    /// A fresh CHUID for a card that has none (after a reset): the non-federal FASC-N, a random
    /// GUID, expiry far ahead, empty signature and error detection code.
    pub fn generate() -> Result<Vec<u8>> {
        let mut guid = [0u8; 16];
        getrandom::fill(&mut guid)
            .map_err(|e| ukey_api::Error::Device(format!("no randomness for a card GUID: {e}")))?;
        // RFC 4122 version 4 UUID.
        guid[6] = (guid[6] & 0x0F) | 0x40;
        guid[8] = (guid[8] & 0x3F) | 0x80;
        let mut out = Vec::new();
        tlv::encode(TAG_FASCN, &NON_FEDERAL_FASCN, &mut out);
        tlv::encode(TAG_GUID, &guid, &mut out);
        tlv::encode(TAG_EXPIRY, b"20991231", &mut out);
        tlv::encode(0x3E, &[], &mut out);
        tlv::encode(0xFE, &[], &mut out);
        Ok(out)
    }
}

/// Which PIN the card wants for VERIFY, from the discovery object's PIN usage policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinPolicy {
    /// The PIV application PIN (`80`): the default.
    PivPin,
    /// The Global PIN (`00`) is the primary PIN.
    GlobalPin,
}

/// Reads the PIN usage policy (tag `5F2F`) from a discovery object's content (the value of `7E`).
pub fn pin_policy(discovery: &[u8]) -> Result<PinPolicy> {
    let policy = tlv::find(discovery, 0x5F2F)?.unwrap_or(&[]);
    Ok(match policy {
        // First byte bit 0x20: Global PIN satisfies the access rules; second byte 0x20: it is
        // the primary PIN.
        [first, 0x20, ..] if first & 0x20 != 0 => PinPolicy::GlobalPin,
        _ => PinPolicy::PivPin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_prefers_guid() {
        let guid = [0x11u8; 16];
        let object = [tlv::encoded(0x30, &NON_FEDERAL_FASCN), tlv::encoded(0x34, &guid)].concat();
        let chuid = Chuid::parse(&object).unwrap();
        assert_eq!(chuid.serial().unwrap(), "11".repeat(16));
        let object = [tlv::encoded(0x30, &NON_FEDERAL_FASCN), tlv::encoded(0x34, &[0; 16])].concat();
        assert_eq!(Chuid::parse(&object).unwrap().serial().unwrap(), hex::encode_upper(NON_FEDERAL_FASCN));
        assert_eq!(Chuid::parse(&[]).unwrap().serial(), None);
        assert!(Chuid::parse(&[0x34, 0x10, 0x00]).is_err());
    }

    #[test]
    fn generated_chuid_parses_with_random_guid() {
        let a = Chuid::parse(&Chuid::generate().unwrap()).unwrap();
        let b = Chuid::parse(&Chuid::generate().unwrap()).unwrap();
        assert_ne!(a.guid, b.guid);
        assert_eq!(a.guid.as_ref().unwrap().len(), 16);
    }

    #[test]
    fn pin_policy_from_discovery() {
        let aid = tlv::encoded(0x4F, &[0xA0, 0, 0, 3, 8, 0, 0, 0x10, 0, 1, 0]);
        let piv = [aid.clone(), tlv::encoded(0x5F2F, &[0x40, 0x00])].concat();
        assert_eq!(pin_policy(&piv).unwrap(), PinPolicy::PivPin);
        let global = [aid, tlv::encoded(0x5F2F, &[0x60, 0x20])].concat();
        assert_eq!(pin_policy(&global).unwrap(), PinPolicy::GlobalPin);
        assert_eq!(pin_policy(&[]).unwrap(), PinPolicy::PivPin);
    }
}
