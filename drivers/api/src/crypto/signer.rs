//! The signer abstraction used by CSR, certificate and CMS building: a key that may stay on its
//! carrier, seen only through "sign this prepared input".

use crate::carrier::{Carrier, Credential};
use crate::crypto::keyinfo;
use crate::error::Result;
use crate::mechanism::{KeyAlgorithm, Mechanism, SignInput};
use crate::object::ObjectId;

/// A private key the host can ask for signatures, wherever it lives (software, PKCS#11 token,
/// PIV card). Builders hash, encode and assemble; only [`KeySigner::sign`] touches the key.
pub trait KeySigner {
    /// The key's algorithm.
    fn algorithm(&self) -> KeyAlgorithm;

    /// The public key as DER SubjectPublicKeyInfo.
    fn public_key_spki(&self) -> &[u8];

    /// Signs an input prepared by [`crate::crypto::prepare_input`]; returns the raw signature
    /// (`r ‖ s` for EC/SM2, the signature block for RSA), as [`Carrier::sign`] does.
    fn sign(&self, mechanism: &Mechanism, input: &SignInput) -> Result<Vec<u8>>;
}

/// A [`KeySigner`] over a key on any [`Carrier`], authenticating each signature with `credential`.
pub struct CarrierKeySigner<'a> {
    carrier: &'a dyn Carrier,
    key: ObjectId,
    credential: &'a Credential,
    algorithm: KeyAlgorithm,
    public_key_spki: Vec<u8>,
}

impl<'a> CarrierKeySigner<'a> {
    /// Wraps the key `key` on `carrier`, whose public key is `public_key_spki` (from the key
    /// object or its certificate).
    pub fn new(
        carrier: &'a dyn Carrier,
        key: ObjectId,
        public_key_spki: Vec<u8>,
        credential: &'a Credential,
    ) -> Result<Self> {
        let algorithm = keyinfo::spki_algorithm(&public_key_spki)?;
        Ok(CarrierKeySigner { carrier, key, credential, algorithm, public_key_spki })
    }
}

impl KeySigner for CarrierKeySigner<'_> {
    fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    fn public_key_spki(&self) -> &[u8] {
        &self.public_key_spki
    }

    fn sign(&self, mechanism: &Mechanism, input: &SignInput) -> Result<Vec<u8>> {
        self.carrier.sign(&self.key, mechanism, input, self.credential)
    }
}

impl<T: KeySigner + ?Sized> KeySigner for &T {
    fn algorithm(&self) -> KeyAlgorithm {
        (**self).algorithm()
    }

    fn public_key_spki(&self) -> &[u8] {
        (**self).public_key_spki()
    }

    fn sign(&self, mechanism: &Mechanism, input: &SignInput) -> Result<Vec<u8>> {
        (**self).sign(mechanism, input)
    }
}

/// Signs DER-encoded to-be-signed data for X.509 / PKCS#10: prepares the input (SM2: over
/// `Z ‖ data` with the mechanism's id), has the signer sign it, and returns the signature
/// AlgorithmIdentifier and the BIT STRING value (EC/SM2: DER `SEQUENCE { r, s }`).
pub fn sign_for_x509(
    signer: &dyn KeySigner,
    mechanism: &Mechanism,
    tbs_der: &[u8],
) -> Result<(spki::AlgorithmIdentifierOwned, der::asn1::BitString)> {
    let input = crate::crypto::prepare_input(
        mechanism,
        Some(signer.public_key_spki()),
        crate::crypto::SignData::Message(tbs_der),
    )?;
    let raw = signer.sign(mechanism, &input)?;
    let bits = crate::crypto::x509sig::signature_bits(signer.algorithm(), &raw)?;
    Ok((crate::crypto::x509sig::signature_algorithm(mechanism)?, crate::crypto::x509sig::bit_string(&bits)?))
}
