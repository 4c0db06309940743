//! EC and SM2 signature encodings: raw `r ‖ s` (what carriers return, PKCS#11 and PIV style)
//! and DER `SEQUENCE { INTEGER r, INTEGER s }` (what OpenSSL, X.509, CMS and GM/T 0009 use).
//!
//! Both directions are strict: wrong lengths, zero components, negative or non-minimal integers
//! and trailing bytes are refused, so a malformed signature never reaches a verifier or a file.

use der::asn1::UintRef;
use der::{Decode, Reader, SliceReader};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::mechanism::KeyAlgorithm;

/// How a signature is written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureFormat {
    /// DER `SEQUENCE { r, s }` for EC/SM2 (what `openssl dgst -verify` reads); RSA is unchanged.
    Der,
    /// Fixed-width `r ‖ s` for EC/SM2; RSA is unchanged.
    Raw,
}

impl std::str::FromStr for SignatureFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "der" => Ok(SignatureFormat::Der),
            "raw" => Ok(SignatureFormat::Raw),
            _ => Err(Error::InvalidInput(format!("signature format `{s}`; supported: der, raw"))),
        }
    }
}

/// Encodes a raw `r ‖ s` (each `field_len` bytes) as DER.
pub fn raw_to_der(raw: &[u8], field_len: usize) -> Result<Vec<u8>> {
    if field_len == 0 || raw.len() != 2 * field_len {
        return Err(Error::InvalidInput(format!(
            "a raw signature for this key is {} bytes (r ‖ s, {field_len} each); got {}",
            2 * field_len,
            raw.len()
        )));
    }
    let (r, s) = raw.split_at(field_len);
    let r = der_integer(r).ok_or_else(|| Error::InvalidInput("signature component r is zero".into()))?;
    let s = der_integer(s).ok_or_else(|| Error::InvalidInput("signature component s is zero".into()))?;
    let mut body = Vec::with_capacity(r.len() + s.len());
    body.extend_from_slice(&r);
    body.extend_from_slice(&s);
    let mut out = Vec::with_capacity(body.len() + 4);
    out.push(0x30);
    push_length(&mut out, body.len());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes a DER `SEQUENCE { r, s }` into raw `r ‖ s`, each left-padded to `field_len` bytes.
pub fn der_to_raw(der: &[u8], field_len: usize) -> Result<Vec<u8>> {
    let bad = |why: String| Error::InvalidInput(format!("not a DER ECDSA/SM2 signature: {why}"));
    let mut reader = SliceReader::new(der).map_err(|e| bad(e.to_string()))?;
    let (r, s) = reader
        .sequence(|seq| {
            let r = UintRef::decode(seq)?;
            let s = UintRef::decode(seq)?;
            Ok::<_, der::Error>((r, s))
        })
        .map_err(|e| bad(e.to_string()))?;
    reader.finish().map_err(|e| bad(format!("{e} (trailing data after the signature)")))?;
    let mut out = vec![0u8; 2 * field_len];
    for (name, value, slot) in [("r", r, 0), ("s", s, field_len)] {
        let bytes = value.as_bytes();
        if bytes.iter().all(|b| *b == 0) {
            return Err(bad(format!("{name} is zero")));
        }
        if bytes.len() > field_len {
            return Err(bad(format!("{name} is {} bytes, longer than the key's {field_len}", bytes.len())));
        }
        let start = slot + field_len - bytes.len();
        out[start..slot + field_len].copy_from_slice(bytes);
    }
    Ok(out)
}

/// Converts a raw carrier signature into `format` for a key algorithm (RSA passes through).
pub fn encode_signature(alg: KeyAlgorithm, raw: &[u8], format: SignatureFormat) -> Result<Vec<u8>> {
    match (alg.ec_field_len(), format) {
        (Some(n), SignatureFormat::Der) => raw_to_der(raw, n),
        (Some(n), SignatureFormat::Raw) => {
            check_raw(raw, n)?;
            Ok(raw.to_vec())
        }
        (None, _) => Ok(raw.to_vec()),
    }
}

/// Accepts an EC/SM2 signature in either DER or raw form and returns raw `r ‖ s`; RSA signatures
/// pass through. A raw value is recognised by its exact length, which no DER encoding of a
/// signature for this key can have unless it also parses as DER.
pub fn signature_to_raw(alg: KeyAlgorithm, sig: &[u8]) -> Result<Vec<u8>> {
    let Some(n) = alg.ec_field_len() else { return Ok(sig.to_vec()) };
    if sig.len() == 2 * n {
        if let Ok(raw) = der_to_raw(sig, n) {
            return Ok(raw);
        }
        check_raw(sig, n)?;
        return Ok(sig.to_vec());
    }
    der_to_raw(sig, n)
}

fn check_raw(raw: &[u8], field_len: usize) -> Result<()> {
    if raw.len() != 2 * field_len {
        return Err(Error::InvalidInput(format!(
            "a raw signature for this key is {} bytes; got {}",
            2 * field_len,
            raw.len()
        )));
    }
    let (r, s) = raw.split_at(field_len);
    if r.iter().all(|b| *b == 0) || s.iter().all(|b| *b == 0) {
        return Err(Error::InvalidInput("signature component r or s is zero".into()));
    }
    Ok(())
}

/// The full DER INTEGER (tag, length, minimal positive value) of a big-endian unsigned number,
/// or `None` when it is zero.
fn der_integer(be: &[u8]) -> Option<Vec<u8>> {
    let first = be.iter().position(|b| *b != 0)?;
    let digits = &be[first..];
    let pad = digits[0] & 0x80 != 0;
    let mut out = Vec::with_capacity(digits.len() + 4);
    out.push(0x02);
    push_length(&mut out, digits.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(digits);
    Some(out)
}

fn push_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ANNEX_A_DER: &str = "3046022100f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3\
                               022100b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa";
    const ANNEX_A_RAW: &str = "f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3\
                               b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa";

    #[test]
    fn annex_a_signature_both_ways() {
        let raw = hex::decode(ANNEX_A_RAW).unwrap();
        let der = hex::decode(ANNEX_A_DER).unwrap();
        assert_eq!(raw_to_der(&raw, 32).unwrap(), der);
        assert_eq!(der_to_raw(&der, 32).unwrap(), raw);
        assert_eq!(signature_to_raw(KeyAlgorithm::Sm2, &der).unwrap(), raw);
        assert_eq!(signature_to_raw(KeyAlgorithm::Sm2, &raw).unwrap(), raw);
    }

    #[test]
    fn short_components_are_padded_and_minimal() {
        let mut raw = vec![0u8; 64];
        raw[31] = 1;
        raw[63] = 0x80;
        let der = raw_to_der(&raw, 32).unwrap();
        assert_eq!(der, hex::decode("30070201010202 0080".replace(' ', "")).unwrap());
        assert_eq!(der_to_raw(&der, 32).unwrap(), raw);
    }

    #[test]
    fn lengths_use_the_right_form() {
        // P-384 at its longest still fits the short form (2 × (2 + 1 + 48) = 102 bytes).
        let raw = vec![0xffu8; 96];
        let der = raw_to_der(&raw, 48).unwrap();
        assert_eq!(&der[..3], &[0x30, 0x66, 0x02]);
        assert_eq!(der_to_raw(&der, 48).unwrap(), raw);
        // A 64-byte field (P-521 sized) needs the long form.
        let raw = vec![0xffu8; 128];
        let der = raw_to_der(&raw, 64).unwrap();
        assert_eq!(&der[..3], &[0x30, 0x81, 0x86]);
        assert_eq!(der_to_raw(&der, 64).unwrap(), raw);
    }

    #[test]
    fn malformed_inputs_are_refused() {
        let der = hex::decode(ANNEX_A_DER).unwrap();
        // trailing data
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(der_to_raw(&trailing, 32).is_err());
        // truncated
        assert!(der_to_raw(&der[..der.len() - 1], 32).is_err());
        // too long for the field
        assert!(der_to_raw(&der, 31).is_err());
        // zero r
        assert!(der_to_raw(&hex::decode("3006020100020101").unwrap(), 32).is_err());
        // non-minimal integer (leading 00 before a byte < 0x80)
        assert!(der_to_raw(&hex::decode("300702020001020101").unwrap(), 32).is_err());
        // negative integer
        assert!(der_to_raw(&hex::decode("3006020180020101").unwrap(), 32).is_err());
        // non-minimal length encoding of the sequence
        assert!(der_to_raw(&hex::decode("30810602010102 0101".replace(' ', "")).unwrap(), 32).is_err());
        // three integers
        assert!(der_to_raw(&hex::decode("3009020101020101020101").unwrap(), 32).is_err());
        // raw of the wrong length, zero components
        assert!(raw_to_der(&[1u8; 63], 32).is_err());
        assert!(raw_to_der(&[0u8; 64], 32).is_err());
        let mut zero_s = vec![1u8; 64];
        zero_s[32..].fill(0);
        assert!(raw_to_der(&zero_s, 32).is_err());
        assert!(signature_to_raw(KeyAlgorithm::P256, &zero_s).is_err());
    }

    #[test]
    fn rsa_passes_through() {
        let sig = vec![7u8; 256];
        let alg = KeyAlgorithm::Rsa { bits: 2048 };
        assert_eq!(encode_signature(alg, &sig, SignatureFormat::Der).unwrap(), sig);
        assert_eq!(signature_to_raw(alg, &sig).unwrap(), sig);
    }

    fn nonzero_raw(field_len: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 2 * field_len).prop_filter("r and s non-zero", move |v| {
            v[..field_len].iter().any(|b| *b != 0) && v[field_len..].iter().any(|b| *b != 0)
        })
    }

    proptest! {
        #[test]
        fn round_trip_32(raw in nonzero_raw(32)) {
            let der = raw_to_der(&raw, 32).unwrap();
            prop_assert_eq!(der_to_raw(&der, 32).unwrap(), raw.clone());
            prop_assert_eq!(signature_to_raw(KeyAlgorithm::Sm2, &der).unwrap(), raw);
        }

        #[test]
        fn round_trip_48(raw in nonzero_raw(48)) {
            let der = raw_to_der(&raw, 48).unwrap();
            prop_assert_eq!(der_to_raw(&der, 48).unwrap(), raw);
        }

        #[test]
        fn leading_zero_bytes_survive(r_zeros in 0usize..31, s_zeros in 0usize..31, fill in 1u8..=255) {
            let mut raw = vec![fill; 64];
            raw[..r_zeros].fill(0);
            raw[32..32 + s_zeros].fill(0);
            let der = raw_to_der(&raw, 32).unwrap();
            prop_assert_eq!(der_to_raw(&der, 32).unwrap(), raw);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(raw) = der_to_raw(&bytes, 32) {
                // Whatever strict DER parses re-encodes to exactly the same bytes.
                prop_assert_eq!(raw_to_der(&raw, 32).unwrap(), bytes);
            }
        }
    }
}
