//! What the host does around a PIV signature: PIV keys compute raw ECDSA over the digest and raw
//! RSA over a block, so the host pads for RSA (PKCS#1 v1.5 DigestInfo or PSS, RFC 8017 §9) and
//! turns the card's DER ECDSA-Sig-Value into the contract's `r ‖ s`.

use sha2::{Digest, Sha256};
use ukey_api::{Error, HashAlg, Result};

use crate::tlv;

/// The ECDSA input for a key whose field is `field_len` bytes: the digest's leftmost bytes when
/// it is longer (as ECDSA truncates), left-padded with zeros when shorter (same integer).
pub fn ec_input(digest: &[u8], field_len: usize) -> Vec<u8> {
    if digest.len() >= field_len {
        digest.get(..field_len).unwrap_or(digest).to_vec()
    } else {
        let mut out = vec![0u8; field_len - digest.len()];
        out.extend_from_slice(digest);
        out
    }
}

/// EMSA-PKCS1-v1_5 encoding of a digest for a `modulus_len`-byte key: the DigestInfo of any
/// SHA hash (SHA-1 to SHA-512: programs bring their own through PKCS#11 `CKM_RSA_PKCS`), built by
/// the contract's DER encoder.
pub fn pkcs1_v15_block(digest: &[u8], hash: HashAlg, modulus_len: usize) -> Result<Vec<u8>> {
    if !hash.in_rsa_digest_info() {
        return Err(Error::NotSupported(format!("RSA with {} on PIV cards", hash.as_str())));
    }
    ukey_api::crypto::rsapad::emsa_pkcs1v15(hash, digest, modulus_len)
}

/// EMSA-PSS encoding (SHA-256, MGF1-SHA-256, 32-byte random salt) of a SHA-256 digest for a key
/// of `modulus_bits` bits.
pub fn pss_sha256_block(digest: &[u8], modulus_bits: usize) -> Result<Vec<u8>> {
    check_digest(digest, HashAlg::Sha256)?;
    let mut salt = [0u8; 32];
    getrandom::fill(&mut salt).map_err(|e| Error::Device(format!("no randomness for the PSS salt: {e}")))?;
    pss_encode(digest, &salt, modulus_bits)
}

fn pss_encode(digest: &[u8], salt: &[u8], modulus_bits: usize) -> Result<Vec<u8>> {
    let em_bits = modulus_bits.saturating_sub(1);
    let em_len = em_bits.div_ceil(8);
    let h_len = 32;
    if em_len < h_len + salt.len() + 2 {
        return Err(Error::InvalidInput("the RSA key is too small for PSS with SHA-256".into()));
    }
    let mut m_prime = vec![0u8; 8];
    m_prime.extend_from_slice(digest);
    m_prime.extend_from_slice(salt);
    let h = Sha256::digest(&m_prime);
    let db_len = em_len - h_len - 1;
    let mut db = vec![0u8; db_len - salt.len() - 1];
    db.push(0x01);
    db.extend_from_slice(salt);
    let mask = mgf1_sha256(&h, db_len);
    for (d, m) in db.iter_mut().zip(mask) {
        *d ^= m;
    }
    let clear_bits = 8 * em_len - em_bits;
    if let Some(first) = db.first_mut() {
        *first &= 0xFF >> clear_bits;
    }
    let mut em = db;
    em.extend_from_slice(&h);
    em.push(0xBC);
    // The block the card exponentiates is as long as the modulus.
    let modulus_len = modulus_bits.div_ceil(8);
    let mut block = vec![0u8; modulus_len - em.len()];
    block.extend_from_slice(&em);
    Ok(block)
}

fn mgf1_sha256(seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut counter = 0u32;
    while out.len() < len {
        let mut h = Sha256::new();
        h.update(seed);
        h.update(counter.to_be_bytes());
        out.extend_from_slice(&h.finalize());
        counter += 1;
    }
    out.truncate(len);
    out
}

fn check_digest(digest: &[u8], hash: HashAlg) -> Result<()> {
    if digest.len() != hash.output_len() {
        return Err(Error::InvalidInput(format!(
            "a {} digest has {} bytes, got {}",
            hash.as_str(),
            hash.output_len(),
            digest.len()
        )));
    }
    Ok(())
}

/// Turns a DER ECDSA-Sig-Value (`30 { 02 r, 02 s }`) into `r ‖ s`, each `field_len` bytes.
pub fn ecdsa_der_to_raw(der: &[u8], field_len: usize) -> Result<Vec<u8>> {
    let bad = |why: &str| Error::Device(format!("the card's ECDSA signature is malformed: {why}"));
    let (seq, rest) = tlv::parse_one(der)?;
    if seq.tag != 0x30 || !rest.is_empty() {
        return Err(bad("not one DER SEQUENCE"));
    }
    let parts = seq.children()?;
    let [r, s] = parts.as_slice() else { return Err(bad("not two integers")) };
    let mut out = Vec::with_capacity(2 * field_len);
    for part in [r, s] {
        if part.tag != 0x02 {
            return Err(bad("component is not an INTEGER"));
        }
        let start = part.value.iter().take_while(|b| **b == 0).count();
        let digits = part.value.get(start..).unwrap_or(&[]);
        if digits.is_empty() || digits.len() > field_len {
            return Err(bad("component out of range for the curve"));
        }
        out.extend(std::iter::repeat_n(0u8, field_len - digits.len()));
        out.extend_from_slice(digits);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_input_truncates_and_pads() {
        assert_eq!(ec_input(&[1; 48], 32), vec![1; 32]);
        let padded = ec_input(&[7; 32], 48);
        assert_eq!(&padded[..16], &[0; 16]);
        assert_eq!(&padded[16..], &[7; 32]);
    }

    #[test]
    fn pkcs1_block_layout() {
        let block = pkcs1_v15_block(&[0xAB; 32], HashAlg::Sha256, 256).unwrap();
        assert_eq!(block.len(), 256);
        assert_eq!(&block[..2], &[0x00, 0x01]);
        assert_eq!(block[256 - 32 - 19 - 1], 0x00);
        assert!(block[2..256 - 52].iter().all(|b| *b == 0xFF));
        assert!(pkcs1_v15_block(&[0; 31], HashAlg::Sha256, 256).is_err());
        assert!(pkcs1_v15_block(&[0; 32], HashAlg::Sha256, 40).is_err());
        let sha1 = pkcs1_v15_block(&[0xAB; 20], HashAlg::Sha1, 256).unwrap();
        assert_eq!(hex::encode(&sha1[256 - 35..256 - 20]), "3021300906052b0e03021a05000414");
        assert!(pkcs1_v15_block(&[0; 32], HashAlg::Sm3, 256).is_err());
    }

    #[test]
    fn pss_block_verifies_with_rustcrypto() {
        use rsa::{BoxedUint, PrivateKey};
        use signature::Verifier;
        let key = PrivateKey::new(&mut getrandom::SysRng, 1024).unwrap();
        let digest = Sha256::digest(b"message");
        let block = pss_sha256_block(&digest, 1024).unwrap();
        // Raw RSA with the private key, as the card does.
        let m = BoxedUint::from_be_slice(&block, 1024).unwrap();
        let sig = rsa::hazmat::rsa_decrypt_and_check(&key, None::<&mut getrandom::SysRng>, &m).unwrap().to_be_bytes();
        let verifying = rsa::pss::VerifyingKey::<Sha256>::new(key.to_public_key());
        let sig = rsa::pss::Signature::try_from(&sig[..]).unwrap();
        verifying.verify(b"message", &sig).unwrap();
    }

    #[test]
    fn ecdsa_der_conversion() {
        let r = [0x00, 0x80, 0x01];
        let s = [0x05];
        let der = tlv::encoded(0x30, &[tlv::encoded(0x02, &r), tlv::encoded(0x02, &s)].concat());
        let raw = ecdsa_der_to_raw(&der, 4).unwrap();
        assert_eq!(raw, vec![0, 0, 0x80, 0x01, 0, 0, 0, 5]);
        assert!(ecdsa_der_to_raw(&der, 1).is_err());
        assert!(ecdsa_der_to_raw(&[0x30, 0x00], 32).is_err());
        assert!(ecdsa_der_to_raw(&[0x30, 0x10, 0x02], 32).is_err());
        assert!(ecdsa_der_to_raw(&[], 32).is_err());
    }
}
