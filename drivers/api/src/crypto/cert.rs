//! X.509 certificate parsing into the contract's [`CertificateInfo`].

use der::{Decode, Encode};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::ext::pkix::KeyUsage;

use crate::crypto::keyinfo;
use crate::error::{Error, Result};
use crate::object::CertificateInfo;

/// Largest certificate ukey will parse; real ones are a few KiB.
pub const MAX_CERT_LEN: usize = 64 * 1024;

/// Parses one certificate from DER or PEM.
pub fn parse_certificate(bytes: &[u8]) -> Result<CertificateInfo> {
    if bytes.len() > MAX_CERT_LEN {
        return Err(Error::InvalidInput(format!(
            "certificate is {} bytes; ukey accepts at most {MAX_CERT_LEN}",
            bytes.len()
        )));
    }
    // The certificate is kept exactly as issued: a re-encoding could differ from the signed bytes
    // (lenient decoding of non-canonical DER) and would give another fingerprint than every
    // other tool shows.
    let der = if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        let (label, der) = der::pem::decode_vec(bytes.trim_ascii())
            .map_err(|e| Error::InvalidInput(format!("not an X.509 certificate (DER or PEM): {e}")))?;
        if label != "CERTIFICATE" {
            return Err(Error::InvalidInput(format!("the PEM block is a {label}, not a CERTIFICATE")));
        }
        der
    } else {
        bytes.to_vec()
    };
    let cert = Certificate::from_der(&der)
        .map_err(|e| Error::InvalidInput(format!("not an X.509 certificate (DER or PEM): {e}")))?;
    let tbs = cert.tbs_certificate();
    let public_key = tbs
        .subject_public_key_info()
        .to_der()
        .map_err(|e| Error::InvalidInput(format!("certificate public key does not encode: {e}")))?;
    let key_usage = match tbs.get_extension::<KeyUsage>() {
        Ok(Some((_, ku))) => key_usage_names(&ku),
        Ok(None) => Vec::new(),
        Err(e) => return Err(Error::InvalidInput(format!("certificate key usage extension is malformed: {e}"))),
    };
    Ok(CertificateInfo {
        subject: tbs.subject().to_string(),
        issuer: tbs.issuer().to_string(),
        serial: hex::encode_upper(tbs.serial_number().as_bytes()),
        not_before: unix_seconds(tbs.validity().not_before.to_unix_duration()),
        not_after: unix_seconds(tbs.validity().not_after.to_unix_duration()),
        key_usage,
        key_algorithm: keyinfo::spki_algorithm(&public_key).ok(),
        sha256_fingerprint: hex::encode(Sha256::digest(&der)),
        public_key,
        der,
    })
}

fn unix_seconds(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn key_usage_names(ku: &KeyUsage) -> Vec<String> {
    let names = [
        (ku.digital_signature(), "digitalSignature"),
        (ku.non_repudiation(), "nonRepudiation"),
        (ku.key_encipherment(), "keyEncipherment"),
        (ku.data_encipherment(), "dataEncipherment"),
        (ku.key_agreement(), "keyAgreement"),
        (ku.key_cert_sign(), "keyCertSign"),
        (ku.crl_sign(), "cRLSign"),
        (ku.encipher_only(), "encipherOnly"),
        (ku.decipher_only(), "decipherOnly"),
    ];
    names.iter().filter(|(on, _)| *on).map(|(_, n)| (*n).to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_with_a_reason() {
        let err = parse_certificate(b"\x30\x03\x02\x01").unwrap_err();
        assert!(err.to_string().contains("not an X.509 certificate"), "{err}");
    }

    /// Found by the `x509` fuzz target: a certificate that decodes leniently but is not in
    /// canonical DER got the fingerprint of its re-encoding. It keeps its own bytes now.
    #[test]
    fn a_certificate_keeps_the_bytes_it_was_issued_with() {
        let bytes = include_bytes!("../../tests/data/noncanonical-cert.der");
        let info = parse_certificate(bytes).expect("x509-cert decodes it");
        assert_eq!(info.der, bytes.to_vec());
        assert_eq!(info.sha256_fingerprint, hex::encode(Sha256::digest(bytes)));
    }
}
