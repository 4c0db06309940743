//! The SM2 Z value of GM/T 0009 / GB/T 32918.2:
//! `Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA)`.
//!
//! Carriers sign `e = SM3(Z ‖ M)`, so the host must compute Z from the signer's public key and
//! distinguishing id. The `sm2` crate keeps its Z computation private, so it lives here.

use der::Decode;
use sm3::Sm3;
use sm3::digest::Digest;
use spki::SubjectPublicKeyInfoRef;

use crate::crypto::keyinfo;
use crate::error::{Error, Result};
use crate::mechanism::{KeyAlgorithm, MAX_SM2_ID_LEN};

/// Curve coefficient a of the GM/T 0003.5 recommended curve `sm2p256v1`.
const CURVE_A: [u8; 32] = hex32("fffffffeffffffffffffffffffffffffffffffff00000000fffffffffffffffc");
/// Curve coefficient b.
const CURVE_B: [u8; 32] = hex32("28e9fa9e9d9f5e344d5a9e4bcf6509a7f39789f515ab8f92ddbcbd414d940e93");
/// x of the base point G.
const GENERATOR_X: [u8; 32] = hex32("32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7");
/// y of the base point G.
const GENERATOR_Y: [u8; 32] = hex32("bc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0");

/// The 65-byte uncompressed SEC1 form (`04 ‖ x ‖ y`) of an SM2 public key.
pub type Sm2Point = [u8; 65];

/// Computes Z for a public key (DER SubjectPublicKeyInfo, or a SEC1 point — uncompressed,
/// compressed, or bare `x ‖ y`) and a distinguishing id (at most [`MAX_SM2_ID_LEN`] bytes).
pub fn sm2_z(public_key: &[u8], id: &[u8]) -> Result<[u8; 32]> {
    let point = sm2_public_point(public_key)?;
    z_from_point(&point, id)
}

/// Computes `e = SM3(Z ‖ M)`, the digest an SM2 carrier signs.
pub fn sm2_e(public_key: &[u8], id: &[u8], message: &[u8]) -> Result<[u8; 32]> {
    let z = sm2_z(public_key, id)?;
    let mut h = Sm3::new();
    h.update(z);
    h.update(message);
    Ok(h.finalize().into())
}

/// Z from an already validated uncompressed point.
pub fn z_from_point(point: &Sm2Point, id: &[u8]) -> Result<[u8; 32]> {
    check_sm2_id(id)?;
    // check_sm2_id bounds the length so the bit count fits 16 bits.
    let entl = u16::try_from(id.len() * 8)
        .map_err(|_| Error::InvalidInput(format!("the SM2 distinguishing id is too long ({} bytes)", id.len())))?;
    let mut h = Sm3::new();
    h.update(entl.to_be_bytes());
    h.update(id);
    h.update(CURVE_A);
    h.update(CURVE_B);
    h.update(GENERATOR_X);
    h.update(GENERATOR_Y);
    h.update(&point[1..]);
    Ok(h.finalize().into())
}

/// Refuses a distinguishing id whose bit length does not fit the 16-bit ENTL field.
pub fn check_sm2_id(id: &[u8]) -> Result<()> {
    if id.len() > MAX_SM2_ID_LEN {
        return Err(Error::InvalidInput(format!(
            "the SM2 distinguishing id is {} bytes; at most {MAX_SM2_ID_LEN} are allowed",
            id.len()
        )));
    }
    Ok(())
}

/// The uncompressed point of an SM2 public key given as SPKI DER or a SEC1 point; checks that
/// the point lies on the SM2 curve.
pub fn sm2_public_point(public_key: &[u8]) -> Result<Sm2Point> {
    let sec1: Vec<u8> = match public_key.first() {
        Some(0x30) => {
            let alg = keyinfo::spki_algorithm(public_key)?;
            if alg != KeyAlgorithm::Sm2 {
                return Err(Error::InvalidInput(format!(
                    "the public key is {alg}, not SM2; SM2 signing needs an SM2 key"
                )));
            }
            let spki = SubjectPublicKeyInfoRef::from_der(public_key)
                .map_err(|e| Error::InvalidInput(format!("not a SubjectPublicKeyInfo: {e}")))?;
            spki.subject_public_key
                .as_bytes()
                .ok_or_else(|| Error::InvalidInput("SM2 public key bit string has unused bits".into()))?
                .to_vec()
        }
        _ if public_key.len() == 64 => {
            let mut v = Vec::with_capacity(65);
            v.push(0x04);
            v.extend_from_slice(public_key);
            v
        }
        _ => public_key.to_vec(),
    };
    let key = sm2::PublicKey::from_sec1_bytes(&sec1).map_err(|_| {
        Error::InvalidInput(
            "not an SM2 public key: expected a SubjectPublicKeyInfo or a SEC1 point (04 ‖ x ‖ y) on the SM2 curve"
                .into(),
        )
    })?;
    let encoded = key.to_sec1_bytes();
    Sm2Point::try_from(encoded.as_ref())
        .map_err(|_| Error::Crypto(format!("SM2 point encoded to {} bytes instead of 65", encoded.len())))
}

/// Parses 64 hex digits at compile time.
const fn hex32(text: &str) -> [u8; 32] {
    let bytes = text.as_bytes();
    assert!(bytes.len() == 64, "curve constants are 32 bytes");
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(bytes[2 * i]) << 4) | nibble(bytes[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("lower-case hex expected"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanism::DEFAULT_SM2_ID;

    /// Public key of the GM/T 0003.5 / GB/T 32918.5 Annex A example.
    const ANNEX_A_POINT: &str = "0409f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020\
                                 ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13";

    #[test]
    fn annex_a_z_and_e() {
        let point = hex::decode(ANNEX_A_POINT).unwrap();
        let z = sm2_z(&point, DEFAULT_SM2_ID).unwrap();
        assert_eq!(hex::encode(z), "b2e14c5c79c6df5b85f4fe7ed8db7a262b9da7e07ccb0ea9f4747b8ccda8a4f3");
        let e = sm2_e(&point, DEFAULT_SM2_ID, b"message digest").unwrap();
        assert_eq!(hex::encode(e), "f0b43e94ba45accaace692ed534382eb17e6ab5a19ce7b31f4486fdfc0d28640");
        // Bare x ‖ y gives the same Z.
        assert_eq!(sm2_z(&point[1..], DEFAULT_SM2_ID).unwrap(), z);
    }

    #[test]
    fn constants_match_the_sm2_crate() {
        use sm2::elliptic_curve::sec1::ToSec1Point;
        let g = sm2::AffinePoint::GENERATOR.to_sec1_point(false);
        assert_eq!(g.x().unwrap().as_slice(), GENERATOR_X);
        assert_eq!(g.y().unwrap().as_slice(), GENERATOR_Y);
    }

    #[test]
    fn overlong_id_is_refused() {
        let point = hex::decode(ANNEX_A_POINT).unwrap();
        let err = sm2_z(&point, &vec![b'a'; MAX_SM2_ID_LEN + 1]).unwrap_err();
        assert!(err.to_string().contains("at most 8191"), "{err}");
        assert!(sm2_z(&point, &vec![b'a'; MAX_SM2_ID_LEN]).is_ok());
        assert!(sm2_z(&point, b"").is_ok());
    }

    #[test]
    fn point_off_the_curve_is_refused() {
        let mut point = hex::decode(ANNEX_A_POINT).unwrap();
        point[64] ^= 1;
        assert!(matches!(sm2_z(&point, DEFAULT_SM2_ID), Err(Error::InvalidInput(_))));
        assert!(sm2_z(b"", DEFAULT_SM2_ID).is_err());
    }
}
