//! An in-memory software private key: the key behind the built-in soft token, the virtual PIV
//! card of the tests, and the test suites themselves.
//!
//! It signs exactly what a carrier signs — a prepared digest — so code paths exercised with a
//! software key are the ones hardware carriers use. Secrets are wiped on drop and never printed.

use std::fmt;

use der::Decode;
use getrandom::SysRng;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, PrivateKeyInfoRef};
use rsa::{Pkcs1v15Sign, PrivateKey, Pss};
use sha2::Sha256;
use signature::hazmat::RandomizedPrehashSigner;
use zeroize::Zeroizing;

use crate::crypto::keyinfo::{OID_EC_PUBLIC_KEY, OID_P256, OID_P384, OID_RSA, OID_SM2};
use crate::crypto::prepare::{SignData, prepare_input};
use crate::crypto::signer::KeySigner;
use crate::error::{Error, Result};
use crate::mechanism::{KeyAlgorithm, Mechanism, SignInput};
use crate::secret::SecretBytes;

/// Salt length of [`Mechanism::RsaPssSha256`] signatures (the SHA-256 output size).
pub const RSA_PSS_SALT_LEN: usize = 32;

/// RSA modulus sizes ukey generates.
pub const RSA_BITS: [u32; 3] = [2048, 3072, 4096];

/// A private key held in memory.
pub struct SoftwareKey {
    material: Material,
    algorithm: KeyAlgorithm,
    public_key_spki: Vec<u8>,
}

enum Material {
    Sm2(Sm2Signer),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Rsa(Box<PrivateKey>),
}

impl SoftwareKey {
    /// Generates a fresh key with randomness from the operating system.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self> {
        use p256::elliptic_curve::Generate;
        let rng_failed = |e: getrandom::Error| Error::Crypto(format!("the system random generator failed: {e}"));
        let material = match algorithm {
            KeyAlgorithm::Sm2 => {
                let secret = sm2::SecretKey::try_generate_from_rng(&mut SysRng).map_err(rng_failed)?;
                Material::Sm2(Sm2Signer::new(&secret)?)
            }
            KeyAlgorithm::P256 => {
                Material::P256(p256::ecdsa::SigningKey::try_generate_from_rng(&mut SysRng).map_err(rng_failed)?)
            }
            KeyAlgorithm::P384 => {
                Material::P384(p384::ecdsa::SigningKey::try_generate_from_rng(&mut SysRng).map_err(rng_failed)?)
            }
            KeyAlgorithm::Rsa { bits } => {
                if !RSA_BITS.contains(&bits) {
                    return Err(Error::NotSupported(format!(
                        "RSA key size {bits}; supported: {}",
                        RSA_BITS.map(|b| b.to_string()).join(", ")
                    )));
                }
                let key = PrivateKey::new(&mut SysRng, bits as usize)
                    .map_err(|e| Error::Crypto(format!("RSA key generation failed: {e}")))?;
                Material::Rsa(Box::new(key))
            }
        };
        Self::from_material(material)
    }

    /// Imports a PKCS#8 private key (DER, or PEM `PRIVATE KEY` as OpenSSL writes it) for SM2,
    /// P-256, P-384 or RSA.
    pub fn from_pkcs8(bytes: &[u8]) -> Result<Self> {
        if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| Error::InvalidInput("the PEM private key is not valid text".into()))?;
            let (label, der) = der::pem::decode_vec(text.as_bytes())
                .map_err(|e| Error::InvalidInput(format!("malformed PEM private key: {e}")))?;
            let der = Zeroizing::new(der);
            if label != "PRIVATE KEY" {
                return Err(Error::InvalidInput(format!(
                    "PEM label `{label}` is not `PRIVATE KEY`; convert it with `openssl pkcs8 -topk8 -nocrypt`"
                )));
            }
            return Self::from_pkcs8_der(&der);
        }
        Self::from_pkcs8_der(bytes)
    }

    /// Imports an unencrypted PKCS#8 DER private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        let bad = |e: &dyn fmt::Display| Error::InvalidInput(format!("not a usable PKCS#8 private key: {e}"));
        let info = PrivateKeyInfoRef::from_der(der).map_err(|e| bad(&e))?;
        let oid = info.algorithm.oid;
        let material = if oid == OID_RSA {
            let key = PrivateKey::from_pkcs8_der(der).map_err(|e| bad(&e))?;
            let bits = key_bits(&key);
            if !(2048..=8192).contains(&bits) {
                return Err(Error::NotSupported(format!("RSA key of {bits} bits; ukey uses 2048 to 8192")));
            }
            Material::Rsa(Box::new(key))
        } else if oid == OID_SM2 {
            // Some issuers name the SM2 curve as the algorithm itself; the key is a SEC1 ECPrivateKey.
            let secret = sm2::SecretKey::from_sec1_der(info.private_key.as_bytes()).map_err(|e| bad(&e))?;
            Material::Sm2(Sm2Signer::new(&secret)?)
        } else if oid == OID_EC_PUBLIC_KEY {
            let curve = info
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok())
                .ok_or_else(|| Error::InvalidInput("EC private key without a named curve".into()))?;
            if curve == OID_P256 {
                Material::P256(p256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(|e| bad(&e))?)
            } else if curve == OID_P384 {
                Material::P384(p384::ecdsa::SigningKey::from_pkcs8_der(der).map_err(|e| bad(&e))?)
            } else if curve == OID_SM2 {
                let secret = sm2::SecretKey::from_pkcs8_der(der).map_err(|e| bad(&e))?;
                Material::Sm2(Sm2Signer::new(&secret)?)
            } else {
                return Err(Error::NotSupported(format!("EC curve {curve}; supported: SM2, P-256, P-384")));
            }
        } else {
            return Err(Error::NotSupported(format!(
                "private key algorithm {oid}; supported: SM2, EC P-256/P-384, RSA"
            )));
        };
        Self::from_material(material)
    }

    /// Exports the key as unencrypted PKCS#8 DER, in a buffer wiped on drop.
    pub fn to_pkcs8_der(&self) -> Result<SecretBytes> {
        let doc = match &self.material {
            Material::Sm2(s) => sm2::SecretKey::from(s.key.as_nonzero_scalar()).to_pkcs8_der(),
            Material::P256(k) => k.to_pkcs8_der(),
            Material::P384(k) => k.to_pkcs8_der(),
            Material::Rsa(k) => k.to_pkcs8_der(),
        }
        .map_err(|e| Error::Crypto(format!("PKCS#8 encoding failed: {e}")))?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// Exports the key as PKCS#8 PEM (`PRIVATE KEY`), as OpenSSL reads it; wiped on drop.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>> {
        let der = self.to_pkcs8_der()?;
        der::pem::encode_string("PRIVATE KEY", der::pem::LineEnding::LF, &der)
            .map(Zeroizing::new)
            .map_err(|e| Error::Crypto(format!("PEM encoding failed: {e}")))
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The public key as DER SubjectPublicKeyInfo.
    pub fn public_key_spki(&self) -> &[u8] {
        &self.public_key_spki
    }

    /// Signs a prepared input (the mechanism's digest) and returns the raw signature: `r ‖ s` for
    /// EC/SM2, the signature block for RSA — what [`crate::Carrier::sign`] returns.
    pub fn sign_digest(&self, mechanism: &Mechanism, input: &SignInput) -> Result<Vec<u8>> {
        mechanism.check_key(self.algorithm)?;
        let expected = mechanism.hash().output_len();
        if input.digest.len() != expected {
            return Err(Error::InvalidInput(format!(
                "{mechanism} signs a {expected}-byte digest; got {} bytes",
                input.digest.len()
            )));
        }
        let failed = |e: &dyn fmt::Display| Error::Crypto(format!("{mechanism} signing failed: {e}"));
        match (&self.material, mechanism) {
            (Material::Sm2(s), Mechanism::Sm2Sm3 { .. }) => s.sign_prehash(&input.digest),
            (Material::P256(k), Mechanism::EcdsaSha256 | Mechanism::EcdsaSha384) => {
                let sig: p256::ecdsa::Signature =
                    k.sign_prehash_with_rng(&mut SysRng, &input.digest).map_err(|e| failed(&e))?;
                Ok(sig.to_bytes().to_vec())
            }
            (Material::P384(k), Mechanism::EcdsaSha256 | Mechanism::EcdsaSha384) => {
                let sig: p384::ecdsa::Signature =
                    k.sign_prehash_with_rng(&mut SysRng, &input.digest).map_err(|e| failed(&e))?;
                Ok(sig.to_bytes().to_vec())
            }
            (Material::Rsa(k), Mechanism::RsaPkcs1Sha256) => {
                k.sign_with_rng(&mut SysRng, Pkcs1v15Sign::new::<Sha256>(), &input.digest).map_err(|e| failed(&e))
            }
            (Material::Rsa(k), Mechanism::RsaPssSha256) => k
                .sign_with_rng(&mut SysRng, Pss::<Sha256>::new_with_salt(RSA_PSS_SALT_LEN), &input.digest)
                .map_err(|e| failed(&e)),
            (Material::Rsa(k), Mechanism::RsaPkcs1 { hash }) => {
                // The whole DigestInfo is the input of an unprefixed PKCS#1 v1.5 signature.
                let info = crate::crypto::rsapad::digest_info(*hash, &input.digest)?;
                k.sign_with_rng(&mut SysRng, Pkcs1v15Sign::new_unprefixed(), &info).map_err(|e| failed(&e))
            }
            _ => Err(Error::NotSupported(format!("a {} key cannot make {mechanism} signatures", self.algorithm))),
        }
    }

    /// The raw RSA private operation on a modulus-sized block (`block^d mod n`), what a PIV card
    /// does for GENERAL AUTHENTICATE: the host has already applied the padding
    /// ([`crate::crypto::rsapad`]). Refused for EC keys and for blocks not below the modulus.
    pub fn rsa_private_raw(&self, block: &[u8]) -> Result<SecretBytes> {
        use rsa::traits::PublicKeyParts;
        let Material::Rsa(key) = &self.material else {
            return Err(Error::NotSupported(format!("a {} key has no raw RSA operation", self.algorithm)));
        };
        let size = key.size();
        if block.len() != size {
            return Err(Error::InvalidInput(format!(
                "the raw RSA input must be {size} bytes (the modulus length); got {}",
                block.len()
            )));
        }
        let c = rsa::BoxedUint::from_be_slice(block, key.n_bits_precision())
            .map_err(|e| Error::InvalidInput(format!("raw RSA input: {e}")))?;
        let m = Zeroizing::new(
            rsa::hazmat::rsa_decrypt_and_check(key.as_ref(), Some(&mut SysRng), &c)
                .map_err(|e| Error::InvalidInput(format!("raw RSA input rejected (not below the modulus?): {e}")))?,
        );
        let bytes = Zeroizing::new(m.to_be_bytes());
        let mut out = Zeroizing::new(vec![0u8; size]);
        let skip = bytes.len().saturating_sub(size);
        let tail = bytes.get(skip..).unwrap_or_default();
        let start = size - tail.len();
        out[start..].copy_from_slice(tail);
        Ok(out)
    }

    /// Signs a digest of any length with an EC or SM2 key, as a card does when it is handed only
    /// a hash (PIV GENERAL AUTHENTICATE): ECDSA truncates or pads per FIPS 186; SM2 needs the
    /// 32-byte `e`. Raw `r ‖ s`.
    pub fn sign_ec_prehash(&self, digest: &[u8]) -> Result<Vec<u8>> {
        let failed =
            |e: &dyn fmt::Display| Error::InvalidInput(format!("cannot sign this {}-byte digest: {e}", digest.len()));
        match &self.material {
            Material::Sm2(s) => {
                if digest.len() != 32 {
                    return Err(Error::InvalidInput(format!(
                        "SM2 signs a 32-byte e = SM3(Z ‖ M); got {} bytes",
                        digest.len()
                    )));
                }
                s.sign_prehash(digest)
            }
            Material::P256(k) => {
                let sig: p256::ecdsa::Signature =
                    k.sign_prehash_with_rng(&mut SysRng, digest).map_err(|e| failed(&e))?;
                Ok(sig.to_bytes().to_vec())
            }
            Material::P384(k) => {
                let sig: p384::ecdsa::Signature =
                    k.sign_prehash_with_rng(&mut SysRng, digest).map_err(|e| failed(&e))?;
                Ok(sig.to_bytes().to_vec())
            }
            Material::Rsa(_) => {
                Err(Error::NotSupported("an RSA key signs through rsa_private_raw or sign_digest".into()))
            }
        }
    }

    /// Hashes `message` for `mechanism` (SM2: with this key's Z) and signs it; raw signature.
    pub fn sign_message(&self, mechanism: &Mechanism, message: &[u8]) -> Result<Vec<u8>> {
        let input = prepare_input(mechanism, Some(&self.public_key_spki), SignData::Message(message))?;
        self.sign_digest(mechanism, &input)
    }

    fn from_material(material: Material) -> Result<Self> {
        let encoded = match &material {
            Material::Sm2(s) => s.key.verifying_key().to_public_key_der(),
            Material::P256(k) => k.verifying_key().to_public_key_der(),
            Material::P384(k) => k.verifying_key().to_public_key_der(),
            Material::Rsa(k) => k.to_public_key().to_public_key_der(),
        }
        .map_err(|e| Error::Crypto(format!("public key encoding failed: {e}")))?;
        let algorithm = match &material {
            Material::Sm2(_) => KeyAlgorithm::Sm2,
            Material::P256(_) => KeyAlgorithm::P256,
            Material::P384(_) => KeyAlgorithm::P384,
            Material::Rsa(k) => KeyAlgorithm::Rsa { bits: key_bits(k) },
        };
        Ok(SoftwareKey { material, algorithm, public_key_spki: encoded.as_bytes().to_vec() })
    }
}

impl KeySigner for SoftwareKey {
    fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    fn public_key_spki(&self) -> &[u8] {
        &self.public_key_spki
    }

    fn sign(&self, mechanism: &Mechanism, input: &SignInput) -> Result<Vec<u8>> {
        self.sign_digest(mechanism, input)
    }
}

impl fmt::Debug for SoftwareKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftwareKey")
            .field("algorithm", &self.algorithm)
            .field("public_key_spki", &hex::encode(&self.public_key_spki))
            .field("private_key", &"<redacted>")
            .finish()
    }
}

fn key_bits(key: &PrivateKey) -> u32 {
    use rsa::traits::PublicKeyParts;
    key.n().bit_width()
}

/// An SM2 private key ready to sign digests (GM/T 0003.2 §6.1), boxed so its bytes stay in one
/// place that drop overwrites (the `sm2` crate does not wipe its keys).
///
/// Besides the key it keeps `(1 + d)⁻¹ mod n`, which depends on the key only: computing it once
/// here instead of per signature (as the `sm2` crate's signer does) leaves a signature with one
/// fixed-base multiplication `[k]G` (precomputed tables), one field inversion for the affine x,
/// and two scalar multiplications — the cost that decides the soft token's signing rate.
struct Sm2Signer {
    key: Box<sm2::dsa::SigningKey>,
    d_plus_1_inv: Box<sm2::Scalar>,
}

impl Sm2Signer {
    fn new(secret: &sm2::SecretKey) -> Result<Self> {
        // The distinguishing id only matters when the sm2 crate hashes a message itself; ukey
        // always signs a digest it prepared, so the id is irrelevant here.
        let key = sm2::dsa::SigningKey::new("", secret).map_err(|_| Error::Crypto("invalid SM2 private key".into()))?;
        let d: &sm2::Scalar = key.as_nonzero_scalar().as_ref();
        // d = n - 1 is not a valid SM2 private key (GM/T 0003.1 §6.1: d ∈ [1, n-2]): 1 + d = 0.
        let d_plus_1_inv = Option::<sm2::Scalar>::from((*d + sm2::Scalar::ONE).invert())
            .ok_or_else(|| Error::Crypto("invalid SM2 private key (d = n - 1)".into()))?;
        Ok(Sm2Signer { key: Box::new(key), d_plus_1_inv: Box::new(d_plus_1_inv) })
    }

    /// Signs a 32-byte digest `e` = SM3(Z ‖ M) with a fresh random `k` from the operating
    /// system (GM/T 0003.2 §6.1 A3–A7), retrying on the negligible-probability rejections.
    fn sign_prehash(&self, digest: &[u8]) -> Result<Vec<u8>> {
        use sm2::elliptic_curve::Generate;
        use sm2::elliptic_curve::bigint::Reduce;
        use sm2::elliptic_curve::group::Group;
        use sm2::elliptic_curve::point::AffineCoordinates;

        let digest: [u8; 32] =
            digest.try_into().map_err(|_| Error::Crypto(format!("an SM2 digest is 32 bytes, not {}", digest.len())))?;
        let e = <sm2::Scalar as Reduce<sm2::FieldBytes>>::reduce(&sm2::FieldBytes::from(digest));
        for _ in 0..8 {
            let k = Zeroizing::new(
                *sm2::NonZeroScalar::try_generate_from_rng(&mut SysRng)
                    .map_err(|e| Error::Crypto(format!("the system random generator failed: {e}")))?
                    .as_ref(),
            );
            let point = sm2::ProjectivePoint::mul_by_generator(&*k).to_affine();
            let r = e + <sm2::Scalar as Reduce<sm2::FieldBytes>>::reduce(&point.x());
            if bool::from(r.is_zero() | (r + *k).is_zero()) {
                continue;
            }
            // s = (1 + d)⁻¹ · (k − r·d) = (1 + d)⁻¹ · (k + r) − r
            let s = *self.d_plus_1_inv * (*k + r) - r;
            debug_assert_eq!(s, *self.d_plus_1_inv * (*k - r * self.key.as_nonzero_scalar().as_ref()));
            if bool::from(s.is_zero()) {
                continue;
            }
            let signature = sm2::dsa::Signature::from_scalars(r, s)
                .map_err(|e| Error::Crypto(format!("SM2 signing failed: {e}")))?;
            return Ok(signature.to_bytes().to_vec());
        }
        Err(Error::Crypto("SM2 signing failed: the random generator kept giving rejected nonces".into()))
    }
}

impl Drop for Sm2Signer {
    fn drop(&mut self) {
        // Overwrite the boxed key in place with the key for scalar 1, so the secret scalar's bytes
        // in the heap allocation are replaced before it is freed.
        let one = sm2::NonZeroScalar::new(sm2::Scalar::ONE).into_option();
        if let Some(wiped) = one.and_then(|one| sm2::dsa::SigningKey::from_nonzero_scalar("", one).ok()) {
            *self.key = wiped;
            std::hint::black_box(&*self.key);
        }
        zeroize::Zeroize::zeroize(&mut *self.d_plus_1_inv);
        std::hint::black_box(&*self.d_plus_1_inv);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keyinfo::spki_algorithm;
    use crate::crypto::verify::verify_signature;
    use crate::mechanism::HashAlg;
    use sha2::Digest;

    #[test]
    fn ec_keys_round_trip_through_pkcs8() {
        for alg in [KeyAlgorithm::Sm2, KeyAlgorithm::P256, KeyAlgorithm::P384] {
            let key = SoftwareKey::generate(alg).unwrap();
            assert_eq!(spki_algorithm(key.public_key_spki()).unwrap(), alg);
            let der = key.to_pkcs8_der().unwrap();
            let again = SoftwareKey::from_pkcs8_der(&der).unwrap();
            assert_eq!(again.public_key_spki(), key.public_key_spki());
            let pem = key.to_pkcs8_pem().unwrap();
            assert_eq!(SoftwareKey::from_pkcs8(pem.as_bytes()).unwrap().public_key_spki(), key.public_key_spki());
        }
    }

    #[test]
    fn raw_signature_sizes() {
        let cases = [
            (KeyAlgorithm::Sm2, KeyAlgorithm::Sm2.default_mechanism(), 64),
            (KeyAlgorithm::P256, Mechanism::EcdsaSha256, 64),
            (KeyAlgorithm::P256, Mechanism::EcdsaSha384, 64),
            (KeyAlgorithm::P384, Mechanism::EcdsaSha384, 96),
            (KeyAlgorithm::P384, Mechanism::EcdsaSha256, 96),
        ];
        for (alg, mech, len) in cases {
            let key = SoftwareKey::generate(alg).unwrap();
            assert_eq!(key.sign_message(&mech, b"hello").unwrap().len(), len, "{alg} {mech}");
        }
    }

    #[test]
    fn sm2_signature_verifies_with_the_sm2_crate_over_the_message() {
        use signature::Verifier;
        let key = SoftwareKey::generate(KeyAlgorithm::Sm2).unwrap();
        let mech = Mechanism::Sm2Sm3 { user_id: b"1234567812345678".to_vec() };
        let raw = key.sign_message(&mech, b"hello sm2").unwrap();
        let Material::Sm2(s) = &key.material else { panic!("SM2 key expected") };
        let public = sm2::PublicKey::from(s.key.verifying_key());
        let vk = sm2::dsa::VerifyingKey::new("1234567812345678", public).unwrap();
        let sig = sm2::dsa::Signature::from_slice(&raw).unwrap();
        vk.verify(b"hello sm2", &sig).unwrap();
        assert!(vk.verify(b"hello sm3", &sig).is_err());
        let other_id = sm2::dsa::VerifyingKey::new("ALICE123@YAHOO.COM", public).unwrap();
        assert!(other_id.verify(b"hello sm2", &sig).is_err());
    }

    #[test]
    fn rsa_2048_generates_and_signs_both_paddings() {
        use rsa::traits::PublicKeyParts;
        let key = SoftwareKey::generate(KeyAlgorithm::Rsa { bits: 2048 }).unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::Rsa { bits: 2048 });
        let Material::Rsa(private) = &key.material else { panic!("RSA key expected") };
        let public = private.to_public_key();
        let digest = Sha256::digest(b"hello rsa");
        let pkcs1 = key.sign_message(&Mechanism::RsaPkcs1Sha256, b"hello rsa").unwrap();
        assert_eq!(pkcs1.len(), public.size());
        public.verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &pkcs1).unwrap();
        for hash in [HashAlg::Sha1, HashAlg::Sha224, HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
            let mech = Mechanism::RsaPkcs1 { hash };
            let sig = key.sign_message(&mech, b"hello rsa").unwrap();
            verify_signature(key.public_key_spki(), &mech, SignData::Message(b"hello rsa"), &sig).unwrap();
            if hash == HashAlg::Sha256 {
                assert_eq!(sig, pkcs1, "same block as rsa-pkcs1-sha256 (deterministic)");
            }
        }
        let pss = key.sign_message(&Mechanism::RsaPssSha256, b"hello rsa").unwrap();
        public.verify(Pss::<Sha256>::new_with_salt(RSA_PSS_SALT_LEN), &digest, &pss).unwrap();
        let again = SoftwareKey::from_pkcs8_der(&key.to_pkcs8_der().unwrap()).unwrap();
        assert_eq!(again.public_key_spki(), key.public_key_spki());
        assert!(matches!(SoftwareKey::generate(KeyAlgorithm::Rsa { bits: 1024 }), Err(Error::NotSupported(_))));
    }

    #[test]
    fn wrong_mechanism_and_digest_length_are_refused() {
        let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
        let err = key.sign_message(&Mechanism::RsaPssSha256, b"x").unwrap_err();
        assert!(matches!(err, Error::NotSupported(_)), "{err}");
        let input = SignInput { digest: vec![0u8; 20], message: None };
        let err = key.sign_digest(&Mechanism::EcdsaSha256, &input).unwrap_err();
        assert!(err.to_string().contains("32-byte"), "{err}");
    }

    #[test]
    fn debug_redacts_the_private_key() {
        let key = SoftwareKey::generate(KeyAlgorithm::P256).unwrap();
        let Material::P256(inner) = &key.material else { panic!("P-256 key expected") };
        let scalar = hex::encode(inner.to_bytes());
        let printed = format!("{key:?}");
        assert!(printed.contains("<redacted>"));
        assert!(!printed.to_lowercase().contains(&scalar));
    }

    #[test]
    fn garbage_pkcs8_is_refused() {
        assert!(matches!(SoftwareKey::from_pkcs8_der(b"\x30\x00"), Err(Error::InvalidInput(_))));
        let err = SoftwareKey::from_pkcs8(b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    }
}
