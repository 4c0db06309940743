//! RSA signature encodings built on the host, for carriers that do only the raw RSA operation
//! (PIV cards: GENERAL AUTHENTICATE over a full modulus-sized block) or that want a DigestInfo
//! (PKCS#11 `CKM_RSA_PKCS`).
//!
//! EMSA-PKCS1-v1_5 and EMSA-PSS of RFC 8017 with SHA-256 (PSS: MGF1-SHA-256, 32-byte salt).
//! The round trip through a raw private operation is verified by the `rsa` crate in the tests.

use der::asn1::{Null, OctetString};
use der::{Decode, Encode, Sequence};
use getrandom::SysRng;
use rand_core::TryRng;
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;

use crate::crypto::software::RSA_PSS_SALT_LEN;
use crate::crypto::x509sig::{hash_for_oid, hash_oid};
use crate::error::{Error, Result};
use crate::mechanism::{HashAlg, Mechanism};

/// `DigestInfo ::= SEQUENCE { digestAlgorithm AlgorithmIdentifier, digest OCTET STRING }`
/// (RFC 8017 §9.2), what RSA PKCS#1 v1.5 signs.
#[derive(Sequence)]
struct DigestInfo {
    algorithm: AlgorithmIdentifierOwned,
    digest: OctetString,
}

/// The DER DigestInfo of a `hash` digest (parameters NULL, as RFC 8017 writes them).
pub fn digest_info(hash: HashAlg, digest: &[u8]) -> Result<Vec<u8>> {
    if !hash.in_rsa_digest_info() {
        return Err(Error::NotSupported(format!("RSA PKCS#1 v1.5 with {}", hash.as_str())));
    }
    check_digest_len(hash, digest)?;
    let info = DigestInfo {
        algorithm: AlgorithmIdentifierOwned { oid: hash_oid(hash), parameters: Some(Null.into()) },
        digest: OctetString::new(digest).map_err(|e| Error::Crypto(format!("DigestInfo digest: {e}")))?,
    };
    info.to_der().map_err(|e| Error::Crypto(format!("DigestInfo encoding: {e}")))
}

/// The hash and digest inside a DER DigestInfo a program brought (PKCS#11 `CKM_RSA_PKCS`).
///
/// Accepts SHA-1, -224, -256, -384 and -512, with NULL or absent parameters (both are seen in the
/// field); refuses anything else, trailing bytes, and a digest of the wrong length.
pub fn parse_digest_info(der: &[u8]) -> Result<(HashAlg, Vec<u8>)> {
    let info = DigestInfo::from_der(der)
        .map_err(|e| Error::InvalidInput(format!("the input is not a DER DigestInfo: {e}")))?;
    let hash = hash_for_oid(&info.algorithm.oid).filter(|h| h.in_rsa_digest_info()).ok_or_else(|| {
        Error::NotSupported(format!(
            "a DigestInfo naming hash {}; supported: SHA-1, SHA-224, SHA-256, SHA-384, SHA-512",
            info.algorithm.oid
        ))
    })?;
    if let Some(params) = &info.algorithm.parameters
        && params.decode_as::<Null>().is_err()
    {
        return Err(Error::InvalidInput("the DigestInfo's hash parameters must be NULL or absent".into()));
    }
    let digest = info.digest.as_bytes().to_vec();
    check_digest_len(hash, &digest)?;
    Ok((hash, digest))
}

fn check_digest_len(hash: HashAlg, digest: &[u8]) -> Result<()> {
    if digest.len() != hash.output_len() {
        return Err(Error::InvalidInput(format!(
            "a {} digest is {} bytes; got {}",
            hash.as_str(),
            hash.output_len(),
            digest.len()
        )));
    }
    Ok(())
}

/// EMSA-PKCS1-v1_5 over a `hash` digest: `00 01 FF…FF 00 ‖ DigestInfo`, `modulus_len` bytes.
pub fn emsa_pkcs1v15(hash: HashAlg, digest: &[u8], modulus_len: usize) -> Result<Vec<u8>> {
    let t = digest_info(hash, digest)?;
    if modulus_len < t.len() + 11 {
        return Err(Error::InvalidInput(format!("an RSA modulus of {modulus_len} bytes is too short for PKCS#1 v1.5")));
    }
    let mut em = Vec::with_capacity(modulus_len);
    em.extend_from_slice(&[0x00, 0x01]);
    em.resize(modulus_len - t.len() - 1, 0xff);
    em.push(0x00);
    em.extend_from_slice(&t);
    Ok(em)
}

/// DER prefix of a SHA-256 DigestInfo (RFC 8017 §9.2 note 1).
const SHA256_DIGEST_INFO_PREFIX: [u8; 19] =
    [0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];

/// The SHA-256 DigestInfo `SEQUENCE { sha256, OCTET STRING digest }` that PKCS#1 v1.5 signs.
pub fn sha256_digest_info(digest: &[u8]) -> Result<Vec<u8>> {
    check_digest(digest)?;
    let mut out = SHA256_DIGEST_INFO_PREFIX.to_vec();
    out.extend_from_slice(digest);
    Ok(out)
}

/// EMSA-PKCS1-v1_5 over a SHA-256 digest: `00 01 FF…FF 00 ‖ DigestInfo`, `modulus_len` bytes.
pub fn emsa_pkcs1v15_sha256(digest: &[u8], modulus_len: usize) -> Result<Vec<u8>> {
    emsa_pkcs1v15(HashAlg::Sha256, digest, modulus_len)
}

/// EMSA-PSS over a SHA-256 digest with a fresh 32-byte salt and MGF1-SHA-256, returned as a
/// block of the modulus length (left-padded with a zero byte when the modulus bit length is
/// 1 mod 8), ready for the raw RSA operation.
pub fn emsa_pss_sha256(digest: &[u8], modulus_bits: usize) -> Result<Vec<u8>> {
    let mut salt = [0u8; RSA_PSS_SALT_LEN];
    SysRng.try_fill_bytes(&mut salt).map_err(|e| Error::Crypto(format!("the system random generator failed: {e}")))?;
    emsa_pss_sha256_with_salt(digest, modulus_bits, &salt)
}

/// [`emsa_pss_sha256`] with a given salt (for known-answer tests).
pub fn emsa_pss_sha256_with_salt(digest: &[u8], modulus_bits: usize, salt: &[u8]) -> Result<Vec<u8>> {
    check_digest(digest)?;
    const H_LEN: usize = 32;
    let em_bits = modulus_bits.checked_sub(1).ok_or_else(|| Error::InvalidInput("RSA modulus of zero bits".into()))?;
    let em_len = em_bits.div_ceil(8);
    if em_len < H_LEN + salt.len() + 2 {
        return Err(Error::InvalidInput(format!("an RSA modulus of {modulus_bits} bits is too short for PSS")));
    }
    let mut m_prime = Sha256::new();
    m_prime.update([0u8; 8]);
    m_prime.update(digest);
    m_prime.update(salt);
    let h = m_prime.finalize();

    let db_len = em_len - H_LEN - 1;
    let mut db = vec![0u8; db_len - salt.len() - 1];
    db.push(0x01);
    db.extend_from_slice(salt);
    mgf1_sha256_xor(&h, &mut db);
    let unused_bits = 8 * em_len - em_bits;
    if let Some(first) = db.first_mut() {
        *first &= 0xffu8 >> unused_bits;
    }

    let modulus_len = modulus_bits.div_ceil(8);
    let mut block = vec![0u8; modulus_len - em_len];
    block.extend_from_slice(&db);
    block.extend_from_slice(&h);
    block.push(0xbc);
    Ok(block)
}

/// The block a raw-RSA carrier must transform for `mechanism` over `digest`.
pub fn rsa_block_for(mechanism: &Mechanism, digest: &[u8], modulus_bits: usize) -> Result<Vec<u8>> {
    match mechanism {
        Mechanism::RsaPkcs1Sha256 => emsa_pkcs1v15_sha256(digest, modulus_bits.div_ceil(8)),
        Mechanism::RsaPssSha256 => emsa_pss_sha256(digest, modulus_bits),
        Mechanism::RsaPkcs1 { hash } => emsa_pkcs1v15(*hash, digest, modulus_bits.div_ceil(8)),
        other => Err(Error::NotSupported(format!("{other} is not an RSA mechanism"))),
    }
}

fn mgf1_sha256_xor(seed: &[u8], out: &mut [u8]) {
    for (counter, chunk) in out.chunks_mut(32).enumerate() {
        let mut h = Sha256::new();
        h.update(seed);
        h.update((counter as u32).to_be_bytes());
        for (o, m) in chunk.iter_mut().zip(h.finalize()) {
            *o ^= m;
        }
    }
}

fn check_digest(digest: &[u8]) -> Result<()> {
    if digest.len() != 32 {
        return Err(Error::InvalidInput(format!("a SHA-256 digest is 32 bytes; got {}", digest.len())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs1_block_shape() {
        let em = emsa_pkcs1v15_sha256(&[7u8; 32], 256).unwrap();
        assert_eq!(em.len(), 256);
        assert_eq!(&em[..2], &[0, 1]);
        assert_eq!(em[256 - 52], 0);
        assert!(em[2..256 - 52].iter().all(|b| *b == 0xff));
        assert!(emsa_pkcs1v15_sha256(&[7u8; 31], 256).is_err());
        assert!(emsa_pkcs1v15_sha256(&[7u8; 32], 40).is_err());
    }

    #[test]
    fn digest_info_matches_rfc_8017_prefixes_and_parses_back() {
        // RFC 8017 §9.2 note 1: the fixed DER prefixes of each DigestInfo.
        let prefixes = [
            (HashAlg::Sha1, "3021300906052b0e03021a05000414"),
            (HashAlg::Sha224, "302d300d06096086480165030402040500041c"),
            (HashAlg::Sha256, "3031300d060960864801650304020105000420"),
            (HashAlg::Sha384, "3041300d060960864801650304020205000430"),
            (HashAlg::Sha512, "3051300d060960864801650304020305000440"),
        ];
        for (hash, prefix) in prefixes {
            let digest = vec![0x5a; hash.output_len()];
            let info = digest_info(hash, &digest).unwrap();
            assert_eq!(hex::encode(&info[..info.len() - digest.len()]), prefix, "{hash:?}");
            assert_eq!(parse_digest_info(&info).unwrap(), (hash, digest));
        }
        assert_eq!(sha256_digest_info(&[9u8; 32]).unwrap(), digest_info(HashAlg::Sha256, &[9u8; 32]).unwrap());
    }

    #[test]
    fn digest_info_parsing_refuses_what_is_not_one() {
        let good = digest_info(HashAlg::Sha1, &[1u8; 20]).unwrap();
        // Absent parameters are accepted.
        let absent = hex::decode(format!("301f300706052b0e03021a0414{}", "01".repeat(20))).unwrap();
        assert_eq!(parse_digest_info(&absent).unwrap(), (HashAlg::Sha1, vec![1u8; 20]));
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(parse_digest_info(&trailing).is_err());
        assert!(parse_digest_info(&good[..good.len() - 1]).is_err());
        assert!(parse_digest_info(b"not a digest info").is_err());
        // A SHA-1 OID with a 32-byte digest.
        let wrong_len = hex::decode(format!("302d300906052b0e03021a05000420{}", "01".repeat(32))).unwrap();
        assert!(parse_digest_info(&wrong_len).unwrap_err().to_string().contains("20 bytes"));
        // MD5 is refused by name.
        let md5 = hex::decode(format!("3020300c06082a864886f70d020505000410{}", "01".repeat(16))).unwrap();
        assert!(matches!(parse_digest_info(&md5), Err(Error::NotSupported(_))));
        assert!(digest_info(HashAlg::Sm3, &[0u8; 32]).is_err());
    }

    #[test]
    fn pss_block_shape() {
        let em = emsa_pss_sha256(&[1u8; 32], 2048).unwrap();
        assert_eq!(em.len(), 256);
        assert_eq!(*em.last().unwrap(), 0xbc);
        assert!(em[0] & 0x80 == 0);
        // Modulus bit length 1 mod 8: a leading zero byte, then em_len bytes.
        let em = emsa_pss_sha256(&[1u8; 32], 2049).unwrap();
        assert_eq!(em.len(), 257);
        assert_eq!(em[0], 0);
        // Fresh salt each time.
        assert_ne!(emsa_pss_sha256(&[1u8; 32], 2048).unwrap(), emsa_pss_sha256(&[1u8; 32], 2048).unwrap());
    }
}
