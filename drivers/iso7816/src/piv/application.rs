//! The PIV card commands (SP 800-73-4 Part 2 §3) over a [`Channel`]: each method is one card
//! operation, builds its APDU, and names its errors through the one status-word map.

use ukey_api::{Error, Pin, PinRole, Result};
use zeroize::Zeroizing;

use super::certificate;
use super::keys::spki_from_generate;
use super::management::ManagementKey;
use super::objects::{REF_MANAGEMENT, REF_PIN, REF_PUK, Slot, TAG_KEY_HISTORY};
use crate::apdu::{Command, Le};
use crate::status::{Context, StatusWord};
use crate::tlv;
use crate::transport::Channel;

/// The PIV application identifier, right-truncated as SP 800-73-4 Part 2 §2.2 allows.
pub const AID: [u8; 9] = [0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00];
/// The NIST registered application provider id alone, which some cards want instead.
pub const RID: [u8; 5] = [0xA0, 0x00, 0x00, 0x03, 0x08];

/// What the card said about its PIV application on SELECT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectInfo {
    /// Application label (tag `50`), when present.
    pub label: Option<String>,
}

/// A PIN reference's state, probed without spending a try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinProbe {
    /// Already verified in this card session.
    Verified,
    /// Not verified; this many tries left.
    Retries(u32),
    /// Blocked.
    Blocked,
}

/// The PIV application on one card, within one transaction.
pub struct Piv<'c, 'a> {
    ch: &'c mut Channel<'a>,
}

/// A PIN or PUK padded to the 8 bytes PIV wants (`FF` fill); 6 to 8 characters.
fn padded(pin: &Pin, role: PinRole) -> Result<Zeroizing<Vec<u8>>> {
    let bytes = pin.expose_bytes();
    if !(6..=8).contains(&bytes.len()) {
        return Err(Error::PinRejected(format!("a PIV {role} has 6 to 8 characters")));
    }
    let mut out = Zeroizing::new(Vec::with_capacity(8));
    out.extend_from_slice(bytes);
    out.resize(8, 0xFF);
    Ok(out)
}

impl<'c, 'a> Piv<'c, 'a> {
    /// The application over a channel (call [`Piv::select`] first in each transaction).
    pub fn new(ch: &'c mut Channel<'a>) -> Self {
        Piv { ch }
    }

    /// SELECT the PIV application.
    pub fn select(&mut self) -> Result<SelectInfo> {
        let cmd = Command::new(0x00, 0xA4, 0x04, 0x00).with_data(AID.to_vec()).with_le(Le::Max);
        let mut r = self.ch.transmit(&cmd)?;
        if r.sw == StatusWord::NOT_FOUND {
            let cmd = Command::new(0x00, 0xA4, 0x04, 0x00).with_data(RID.to_vec()).with_le(Le::Max);
            r = self.ch.transmit(&cmd)?;
        }
        if r.sw == StatusWord::NOT_FOUND {
            return Err(Error::NotSupported("this card has no PIV application".into()));
        }
        r.sw.check(Context::new("select the PIV application"))?;
        let label = match tlv::find(&r.data, 0x61) {
            Ok(Some(template)) => tlv::find(template, 0x50)
                .ok()
                .flatten()
                .map(|l| String::from_utf8_lossy(l).trim().to_string())
                .filter(|l| !l.is_empty()),
            _ => None,
        };
        Ok(SelectInfo { label })
    }

    /// GET DATA: the content of a data object (inside its `53`), or `None` when the card has none.
    pub fn get_data(&mut self, tag: u32) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let what = format!("read data object {tag:X}");
        let cmd = Command::new(0x00, 0xCB, 0x3F, 0xFF).with_data(tlv::encoded(0x5C, &tag_bytes(tag))).with_le(Le::Max);
        let r = self.ch.transmit(&cmd)?;
        if r.sw == StatusWord::NOT_FOUND {
            return Ok(None);
        }
        r.sw.check(Context::new(&what))?;
        // Discovery (7E) comes back under its own tag; everything else under 53.
        let outer = if tag == 0x7E { 0x7E } else { 0x53 };
        let (tlv, _) = tlv::parse_one(&r.data)?;
        if tlv.tag != outer {
            return Err(Error::Device(format!("{what}: the card answered tag {:X} instead of {outer:X}", tlv.tag)));
        }
        if tlv.value.is_empty() {
            return Ok(None);
        }
        Ok(Some(Zeroizing::new(tlv.value.to_vec())))
    }

    /// PUT DATA: replaces a data object's content (needs the management key).
    pub fn put_data(&mut self, tag: u32, content: &[u8]) -> Result<()> {
        let mut data = tlv::encoded(0x5C, &tag_bytes(tag));
        tlv::encode(0x53, content, &mut data);
        let cmd = Command::new(0x00, 0xDB, 0x3F, 0xFF).with_data(data);
        self.ch.call(&cmd, Context::admin(&format!("write data object {tag:X}"))).map(drop)
    }

    /// The certificate DER in a slot, or `None` when the slot has none.
    pub fn read_certificate(&mut self, slot: Slot) -> Result<Option<Vec<u8>>> {
        match self.get_data(slot.certificate_tag())? {
            Some(object) => certificate::decode(&object).map(Some),
            None => Ok(None),
        }
    }

    /// Stores a certificate in a slot (needs the management key).
    pub fn write_certificate(&mut self, slot: Slot, der: &[u8]) -> Result<()> {
        self.put_data(slot.certificate_tag(), &certificate::encode(der))
    }

    /// Removes the certificate of a slot (needs the management key).
    pub fn delete_certificate(&mut self, slot: Slot) -> Result<()> {
        self.put_data(slot.certificate_tag(), &[])
    }

    /// How many retired slots hold certificates, from the key history object; `None` when the
    /// card has no key history (then no retired slot is read).
    pub fn retired_certificates(&mut self) -> Result<Option<u8>> {
        let Some(history) = self.get_data(TAG_KEY_HISTORY)? else { return Ok(None) };
        Ok(Some(tlv::find(&history, 0xC1)?.and_then(|v| v.first().copied()).unwrap_or(0)))
    }

    /// The state of a PIN reference, from an empty VERIFY: spends no try (Part 2 §3.2.1).
    pub fn probe_pin(&mut self, reference: u8) -> Result<PinProbe> {
        let sw = self.ch.status(&Command::new(0x00, 0x20, 0x00, reference))?;
        if sw.is_success() {
            return Ok(PinProbe::Verified);
        }
        if let Some(n) = sw.retries_left() {
            return Ok(if n == 0 { PinProbe::Blocked } else { PinProbe::Retries(n) });
        }
        if sw == StatusWord::AUTH_BLOCKED {
            return Ok(PinProbe::Blocked);
        }
        sw.check(Context::pin("read the PIN state", PinRole::User))?;
        Err(Error::Device(format!("the card answered {sw} to a PIN state query")))
    }

    /// VERIFY a PIN (`reference` 80 or 00).
    pub fn verify(&mut self, reference: u8, pin: &Pin) -> Result<()> {
        let cmd = Command::new(0x00, 0x20, 0x00, reference).with_data(padded(pin, PinRole::User)?.to_vec());
        self.ch.call(&cmd, Context::pin("verify the PIN", PinRole::User)).map(drop)
    }

    /// Drops the PIN's verified state (VERIFY with P1 = FF, Part 2 §3.2.1), so no login outlives
    /// the operation. Cards that do not know it are left as they are.
    pub fn logout(&mut self, reference: u8) -> Result<()> {
        let sw = self.ch.status(&Command::new(0x00, 0x20, 0xFF, reference))?;
        if !sw.is_success() {
            log::debug!("the card does not reset the PIN state on request (SW {sw})");
        }
        Ok(())
    }

    /// CHANGE REFERENCE DATA for the PIN (`80`/`00`) or the PUK (`81`).
    pub fn change_reference(&mut self, reference: u8, old: &Pin, new: &Pin) -> Result<()> {
        let role = if reference == REF_PUK { PinRole::So } else { PinRole::User };
        let mut data = padded(old, role)?;
        data.extend_from_slice(&padded(new, role)?);
        let cmd = Command::new(0x00, 0x24, 0x00, reference).with_data(data.to_vec());
        self.ch.call(&cmd, Context::pin(&format!("change the {role}"), role)).map(drop)
    }

    /// RESET RETRY COUNTER: unblocks the PIN with the PUK and sets a new PIN.
    pub fn unblock(&mut self, puk: &Pin, new_pin: &Pin) -> Result<()> {
        let mut data = padded(puk, PinRole::So)?;
        data.extend_from_slice(&padded(new_pin, PinRole::User)?);
        let cmd = Command::new(0x00, 0x2C, 0x00, REF_PIN).with_data(data.to_vec());
        self.ch.call(&cmd, Context::pin("unblock the PIN with the PUK", PinRole::So)).map(drop)
    }

    /// Mutual authentication with the card management key (Part 2 Appendix A.1 / §3.2.4): the
    /// card proves it holds the key by its witness, the host by decrypting it, and the card's
    /// answer to a host challenge proves the card's side.
    pub fn authenticate_management(&mut self, key: &ManagementKey) -> Result<()> {
        let mut last = None;
        for &alg in key.candidates() {
            let step1 = Command::new(0x00, 0x87, alg.id(), REF_MANAGEMENT)
                .with_data(tlv::encoded(0x7C, &tlv::encoded(0x80, &[])))
                .with_le(Le::Max);
            let r = self.ch.transmit(&step1)?;
            if matches!(r.sw, StatusWord::WRONG_DATA | StatusWord::WRONG_P1P2) {
                // The card's key uses another algorithm; try the next candidate.
                last = Some(r.sw);
                continue;
            }
            r.sw.check(Context::admin("start management key authentication"))?;
            let witness = tlv::require(tlv::require(&r.data, 0x7C)?, 0x80)?;
            let decrypted = key.decrypt(alg, witness)?;
            let mut challenge = Zeroizing::new(vec![0u8; alg.block_len()]);
            getrandom::fill(&mut challenge).map_err(|e| Error::Device(format!("no randomness: {e}")))?;
            let mut inner = tlv::encoded(0x80, &decrypted);
            tlv::encode(0x81, &challenge, &mut inner);
            let step2 = Command::new(0x00, 0x87, alg.id(), REF_MANAGEMENT)
                .with_data(tlv::encoded(0x7C, &inner))
                .with_le(Le::Max);
            let answer = self.ch.call(&step2, Context::admin("authenticate with the management key"))?;
            let proof = tlv::require(tlv::require(&answer, 0x7C)?, 0x82)?;
            let expected = key.encrypt(alg, &challenge)?;
            if proof != expected.as_slice() {
                return Err(Error::Crypto(
                    "the card did not prove it holds the management key; it may not be genuine".into(),
                ));
            }
            return Ok(());
        }
        Err(Error::PermissionDenied(format!(
            "the card accepts none of the management key algorithms tried (last answer {}); set \
             UKEY_PIV_MGMT_KEY=ALG:HEX with the card's algorithm",
            last.map(|s| s.to_string()).unwrap_or_default()
        )))
    }

    /// GENERATE ASYMMETRIC KEY PAIR in a slot (needs the management key); returns the key
    /// algorithm and the public key as DER SubjectPublicKeyInfo.
    pub fn generate(&mut self, slot: Slot, algorithm_id: u8) -> Result<(ukey_api::KeyAlgorithm, Vec<u8>)> {
        let template = tlv::encoded(0xAC, &tlv::encoded(0x80, &[algorithm_id]));
        let cmd = Command::new(0x00, 0x47, 0x00, slot.reference()).with_data(template).with_le(Le::Max);
        let r = self.ch.call(&cmd, Context::admin(&format!("generate a key in slot {slot}")))?;
        spki_from_generate(algorithm_id, &r)
    }

    /// GENERAL AUTHENTICATE with a slot's private key over `input` (a padded RSA block or an
    /// ECDSA digest); returns the card's response (tag `82`), or `None` when the card says the
    /// algorithm does not match the slot's key (`6A80`/`6A86`), so the caller may try another.
    pub fn try_sign_raw(&mut self, slot: Slot, algorithm_id: u8, input: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut inner = tlv::encoded(0x82, &[]);
        tlv::encode(0x81, input, &mut inner);
        let cmd = Command::new(0x00, 0x87, algorithm_id, slot.reference())
            .with_data(tlv::encoded(0x7C, &inner))
            .with_le(Le::Max);
        let r = self.ch.transmit(&cmd)?;
        if matches!(r.sw, StatusWord::WRONG_DATA | StatusWord::WRONG_P1P2) {
            return Ok(None);
        }
        if r.sw == StatusWord::NOT_FOUND || r.sw == StatusWord(0x6A88) {
            return Err(Error::NotFound(format!("a key in slot {slot}")));
        }
        r.sw.check(Context::pin(&format!("sign with the key in slot {slot}"), PinRole::User))?;
        let sig = tlv::require(tlv::require(&r.data, 0x7C)?, 0x82)?;
        if sig.is_empty() {
            return Err(Error::Device(format!("the card returned an empty signature from slot {slot}")));
        }
        Ok(Some(sig.to_vec()))
    }

    /// The reset (INS `FB`) that YubiKey-style PIV cards accept once both PIN and PUK are blocked:
    /// keys, certificates and data go, PIN/PUK/management key return to factory values.
    pub fn reset(&mut self) -> Result<()> {
        let r = self.ch.transmit(&Command::new(0x00, 0xFB, 0x00, 0x00))?;
        if r.sw == StatusWord::CONDITIONS_NOT_SATISFIED {
            return Err(Error::Device("the card refuses the reset while the PIN or PUK is still usable".into()));
        }
        r.sw.check(Context::new("reset the PIV application"))
    }
}

/// A tag as the bytes that name it inside `5C`.
fn tag_bytes(tag: u32) -> Vec<u8> {
    let mut out = Vec::new();
    tlv::encode_tag(tag, &mut out);
    out
}
