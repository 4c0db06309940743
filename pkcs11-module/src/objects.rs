//! The PKCS#11 objects a carrier shows: each certificate, each private key, and a public-key
//! object for every key whose public key is known, with the attributes programs read.
//!
//! Programs find a user's certificates before logging in by pairing certificates with public
//! keys of the same `CKA_ID` (NSS does this), read EC points and RSA moduli from public keys
//! (ssh-keygen, OpenSSL), and sign with private keys after login. Private keys are
//! `CKA_PRIVATE` (except in the agent PIN mode, see [`crate::pin_mode`]), `CKA_SENSITIVE` and
//! never extractable; their secret attributes answer `CKR_ATTRIBUTE_SENSITIVE`.

use cryptoki_sys::*;
use der::asn1::{ObjectIdentifier, OctetStringRef, UintRef};
use der::{Decode, Encode};

use ukey_api::{Capabilities, CertificateObject, KeyAlgorithm, KeyObject, ObjectId, ObjectList};

use crate::mechanisms;

/// The object classes the module shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// An X.509 certificate.
    Certificate,
    /// The public half of a carrier key.
    PublicKey,
    /// A carrier private key (signing happens on the carrier).
    PrivateKey,
}

impl Class {
    fn object_class(self) -> CK_OBJECT_CLASS {
        match self {
            Class::Certificate => CKO_CERTIFICATE,
            Class::PublicKey => CKO_PUBLIC_KEY,
            Class::PrivateKey => CKO_PRIVATE_KEY,
        }
    }
}

/// One attribute's value as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attr {
    /// Readable bytes (`CK_ULONG` and `CK_BBOOL` in native encoding).
    Value(Vec<u8>),
    /// Exists but is never revealed.
    Sensitive,
}

/// One object with its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct P11Object {
    /// Class.
    pub class: Class,
    /// `CKA_ID`: pairs keys with their certificate.
    pub id: ObjectId,
    /// Visible only after login.
    pub private: bool,
    /// Attributes, sorted by type.
    attrs: Vec<(CK_ATTRIBUTE_TYPE, Attr)>,
    /// The key behind a private-key object, for signing.
    pub key: Option<KeyObject>,
    /// The public key (DER SPKI), when known.
    pub spki: Option<Vec<u8>>,
}

impl P11Object {
    /// An attribute, if the object has it.
    pub fn attribute(&self, kind: CK_ATTRIBUTE_TYPE) -> Option<&Attr> {
        self.attrs.binary_search_by_key(&kind, |(k, _)| *k).ok().and_then(|i| self.attrs.get(i)).map(|(_, a)| a)
    }

    /// Whether the object matches a search template (every attribute given, byte for byte).
    pub fn matches(&self, template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> bool {
        template.iter().all(|(kind, want)| match self.attribute(*kind) {
            Some(Attr::Value(have)) => have == want || bool_equal(have, want),
            _ => false,
        })
    }

    /// The key identity of this object within its carrier.
    pub fn key(&self) -> (Class, ObjectId) {
        (self.class, self.id.clone())
    }
}

/// Booleans written by programs as a `CK_ULONG` still match our one-byte `CK_BBOOL`.
fn bool_equal(have: &[u8], want: &[u8]) -> bool {
    have.len() == 1 && want.len() > 1 && want[1..].iter().all(|b| *b == 0) && (want[0] != 0) == (have[0] != 0)
}

/// Builds every object of a carrier from its object list. `private_keys_private`: private keys
/// are `CKA_PRIVATE` (found only after login); false when the agent asks for the PIN at each
/// signature, so programs that never log in find them.
pub fn build(list: &ObjectList, caps: &Capabilities, private_keys_private: bool) -> Vec<P11Object> {
    let mut out = Vec::new();
    for cert in &list.certificates {
        out.push(certificate(cert, list.key_for(&cert.id).is_some()));
    }
    for key in &list.keys {
        let cert = list.certificate_for(&key.id);
        let spki = key.public_key.clone().or_else(|| cert.map(|c| c.info.public_key.clone()));
        let subject = cert.and_then(|c| cert_names(&c.info.der)).map(|n| n.subject).unwrap_or_default();
        if let Some(spki) = &spki {
            out.push(public_key(key, spki, &subject, caps));
        }
        out.push(private_key(key, spki.as_deref(), &subject, caps, private_keys_private));
    }
    out
}

struct Builder(Vec<(CK_ATTRIBUTE_TYPE, Attr)>);

impl Builder {
    fn new(class: Class, label: &str, id: &ObjectId, private: bool) -> Self {
        let mut b = Builder(Vec::new());
        b.ulong(CKA_CLASS, class.object_class());
        b.flag(CKA_TOKEN, true);
        b.flag(CKA_PRIVATE, private);
        b.flag(CKA_MODIFIABLE, false);
        b.flag(CKA_COPYABLE, false);
        b.flag(CKA_DESTROYABLE, false);
        b.bytes(CKA_LABEL, label.as_bytes());
        b.bytes(CKA_ID, &id.0);
        b
    }

    fn bytes(&mut self, kind: CK_ATTRIBUTE_TYPE, value: &[u8]) {
        self.0.push((kind, Attr::Value(value.to_vec())));
    }

    fn ulong(&mut self, kind: CK_ATTRIBUTE_TYPE, value: CK_ULONG) {
        self.0.push((kind, Attr::Value(value.to_ne_bytes().to_vec())));
    }

    fn ulongs(&mut self, kind: CK_ATTRIBUTE_TYPE, values: &[CK_ULONG]) {
        self.0.push((kind, Attr::Value(values.iter().flat_map(|v| v.to_ne_bytes()).collect())));
    }

    fn flag(&mut self, kind: CK_ATTRIBUTE_TYPE, value: bool) {
        self.0.push((kind, Attr::Value(vec![CK_BBOOL::from(value)])));
    }

    fn sensitive(&mut self, kind: CK_ATTRIBUTE_TYPE) {
        self.0.push((kind, Attr::Sensitive));
    }

    fn key_common(&mut self, key: &KeyObject, subject: &[u8], caps: &Capabilities) {
        self.ulong(CKA_KEY_TYPE, mechanisms::key_type(key.algorithm));
        self.bytes(CKA_SUBJECT, subject);
        self.bytes(CKA_START_DATE, &[]);
        self.bytes(CKA_END_DATE, &[]);
        self.flag(CKA_DERIVE, false);
        self.flag(CKA_LOCAL, false);
        self.ulong(CKA_KEY_GEN_MECHANISM, CK_UNAVAILABLE_INFORMATION);
        self.ulongs(CKA_ALLOWED_MECHANISMS, &mechanisms::for_key(key, caps));
    }

    /// EC parameters and point, or RSA modulus and exponent, from the public key.
    fn public_parts(&mut self, alg: KeyAlgorithm, spki: Option<&[u8]>) {
        if let Some(params) = ec_params(alg) {
            self.bytes(CKA_EC_PARAMS, &params);
            if let Some(point) = spki.and_then(ec_point) {
                self.bytes(CKA_EC_POINT, &point);
            }
        }
        if let (KeyAlgorithm::Rsa { bits }, Some((n, e))) = (alg, spki.and_then(rsa_parts)) {
            self.bytes(CKA_MODULUS, &n);
            self.bytes(CKA_PUBLIC_EXPONENT, &e);
            self.ulong(CKA_MODULUS_BITS, CK_ULONG::from(bits));
        }
        if let Some(spki) = spki {
            self.bytes(CKA_PUBLIC_KEY_INFO, spki);
        }
    }

    fn finish(
        self,
        class: Class,
        id: &ObjectId,
        private: bool,
        key: Option<KeyObject>,
        spki: Option<Vec<u8>>,
    ) -> P11Object {
        let mut attrs = self.0;
        attrs.sort_by_key(|(k, _)| *k);
        attrs.dedup_by_key(|(k, _)| *k);
        P11Object { class, id: id.clone(), private, attrs, key, spki }
    }
}

fn certificate(cert: &CertificateObject, has_key: bool) -> P11Object {
    let mut b = Builder::new(Class::Certificate, &cert.label, &cert.id, false);
    b.ulong(CKA_CERTIFICATE_TYPE, CKC_X_509);
    b.flag(CKA_TRUSTED, false);
    // 1 = token user: the holder's own certificate, with its key on the carrier.
    b.ulong(CKA_CERTIFICATE_CATEGORY, if has_key { 1 } else { 0 });
    b.bytes(CKA_VALUE, &cert.info.der);
    let names = cert_names(&cert.info.der).unwrap_or_default();
    b.bytes(CKA_SUBJECT, &names.subject);
    b.bytes(CKA_ISSUER, &names.issuer);
    b.bytes(CKA_SERIAL_NUMBER, &names.serial);
    b.bytes(CKA_START_DATE, &ck_date(cert.info.not_before));
    b.bytes(CKA_END_DATE, &ck_date(cert.info.not_after));
    b.bytes(CKA_URL, &[]);
    b.bytes(CKA_HASH_OF_SUBJECT_PUBLIC_KEY, &[]);
    b.bytes(CKA_HASH_OF_ISSUER_PUBLIC_KEY, &[]);
    b.ulong(CKA_JAVA_MIDP_SECURITY_DOMAIN, 0);
    b.bytes(CKA_PUBLIC_KEY_INFO, &cert.info.public_key);
    b.finish(Class::Certificate, &cert.id, false, None, Some(cert.info.public_key.clone()))
}

fn public_key(key: &KeyObject, spki: &[u8], subject: &[u8], caps: &Capabilities) -> P11Object {
    let mut b = Builder::new(Class::PublicKey, &key.label, &key.id, false);
    b.key_common(key, subject, caps);
    b.flag(CKA_ENCRYPT, false);
    b.flag(CKA_VERIFY, true);
    b.flag(CKA_VERIFY_RECOVER, false);
    b.flag(CKA_WRAP, false);
    b.flag(CKA_TRUSTED, false);
    b.public_parts(key.algorithm, Some(spki));
    b.finish(Class::PublicKey, &key.id, false, None, Some(spki.to_vec()))
}

fn private_key(key: &KeyObject, spki: Option<&[u8]>, subject: &[u8], caps: &Capabilities, private: bool) -> P11Object {
    let mut b = Builder::new(Class::PrivateKey, &key.label, &key.id, private);
    b.key_common(key, subject, caps);
    b.flag(CKA_SENSITIVE, true);
    b.flag(CKA_DECRYPT, false);
    b.flag(CKA_SIGN, true);
    b.flag(CKA_SIGN_RECOVER, false);
    b.flag(CKA_UNWRAP, false);
    b.flag(CKA_EXTRACTABLE, false);
    b.flag(CKA_ALWAYS_SENSITIVE, true);
    b.flag(CKA_NEVER_EXTRACTABLE, true);
    b.flag(CKA_WRAP_WITH_TRUSTED, false);
    b.flag(CKA_ALWAYS_AUTHENTICATE, key.always_authenticate);
    // Public parts on the private key too: programs size signatures and match keys by them.
    b.public_parts(key.algorithm, spki);
    match key.algorithm {
        KeyAlgorithm::Rsa { .. } => {
            for secret in
                [CKA_PRIVATE_EXPONENT, CKA_PRIME_1, CKA_PRIME_2, CKA_EXPONENT_1, CKA_EXPONENT_2, CKA_COEFFICIENT]
            {
                b.sensitive(secret);
            }
        }
        _ => b.sensitive(CKA_VALUE),
    }
    b.finish(Class::PrivateKey, &key.id, private, Some(key.clone()), spki.map(<[u8]>::to_vec))
}

/// DER of the subject, issuer and serial-number INTEGER of a certificate.
#[derive(Debug, Default)]
struct CertNames {
    subject: Vec<u8>,
    issuer: Vec<u8>,
    serial: Vec<u8>,
}

fn cert_names(der: &[u8]) -> Option<CertNames> {
    // The same parser (and profile) ukey-api used to accept the certificate in the first place.
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let tbs = cert.tbs_certificate();
    Some(CertNames {
        subject: tbs.subject().to_der().ok()?,
        issuer: tbs.issuer().to_der().ok()?,
        serial: tbs.serial_number().to_der().ok()?,
    })
}

const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_SM2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.301");

/// `CKA_EC_PARAMS`: the DER named-curve OID.
fn ec_params(alg: KeyAlgorithm) -> Option<Vec<u8>> {
    let oid = match alg {
        KeyAlgorithm::P256 => OID_P256,
        KeyAlgorithm::P384 => OID_P384,
        KeyAlgorithm::Sm2 => OID_SM2,
        KeyAlgorithm::Rsa { .. } => return None,
    };
    oid.to_der().ok()
}

/// `CKA_EC_POINT`: the uncompressed point in a DER OCTET STRING.
fn ec_point(spki: &[u8]) -> Option<Vec<u8>> {
    let info = spki::SubjectPublicKeyInfoRef::from_der(spki).ok()?;
    let point = info.subject_public_key.as_bytes()?;
    OctetStringRef::new(point).ok()?.to_der().ok()
}

/// RSA modulus and public exponent, big-endian without leading zeros.
fn rsa_parts(spki: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let info = spki::SubjectPublicKeyInfoRef::from_der(spki).ok()?;
    let key = rsa::pkcs1::RsaPublicKey::<UintRef<'_>>::from_der(info.subject_public_key.as_bytes()?).ok()?;
    Some((key.modulus.as_bytes().to_vec(), key.public_exponent.as_bytes().to_vec()))
}

/// A `CK_DATE` (`YYYYMMDD`) from Unix seconds, or empty when out of range.
fn ck_date(unix: i64) -> Vec<u8> {
    let days = unix.div_euclid(86_400);
    // Civil-from-days (H. Hinnant's algorithm), proleptic Gregorian.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return Vec::new();
    }
    format!("{year:04}{month:02}{day:02}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_ck_dates() {
        assert_eq!(ck_date(0), b"19700101");
        assert_eq!(ck_date(951_782_400), b"20000229");
        assert_eq!(ck_date(1_735_689_599), b"20241231");
    }

    #[test]
    fn booleans_match_whatever_width_the_program_used() {
        assert!(bool_equal(&[1], &1u64.to_ne_bytes()));
        assert!(!bool_equal(&[1], &0u64.to_ne_bytes()));
        assert!(!bool_equal(&[1], &[1]));
    }

    #[test]
    fn ec_params_are_der_oids() {
        assert_eq!(ec_params(KeyAlgorithm::P256).unwrap(), hex::decode("06082a8648ce3d030107").unwrap());
        assert_eq!(ec_params(KeyAlgorithm::Rsa { bits: 2048 }), None);
    }
}
