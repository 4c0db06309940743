//! The host-side crypto core shared by every driver: hashing per mechanism, the SM2 Z value,
//! signature encodings, verification, certificate parsing, and CSR / certificate building with a
//! key that stays on its carrier.

pub mod cert;
pub mod certbuild;
pub mod cms;
pub mod csr;
pub mod encoding;
pub mod hash;
pub mod keyinfo;
pub mod name;
pub mod pem;
pub mod prepare;
pub mod rsapad;
pub mod sigenc;
pub mod signer;
pub mod sm2z;
pub mod software;
pub mod verify;
pub mod x509sig;

pub use certbuild::{CertificateOptions, issue, issue_from_csr, self_signed, verify_certificate_signature};
pub use cms::{CmsOptions, CmsProfile, CmsVerified, sign_cms, verify_cms, verify_cms_with_ca};
pub use csr::{CsrInfo, build_csr, build_csr_pem, verify_csr};
pub use hash::Hasher;
pub use keyinfo::spki_algorithm;
pub use name::parse_name;
pub use prepare::{SignData, check_input_form, input_from_digest, message_hasher, prepare_input};
pub use sigenc::{SignatureFormat, der_to_raw, encode_signature, raw_to_der, signature_to_raw};
pub use signer::sign_for_x509;
pub use signer::{CarrierKeySigner, KeySigner};
pub use sm2z::{sm2_e, sm2_z};
pub use software::SoftwareKey;
pub use verify::{PssSaltLen, VerifyOptions, public_key_from_pem_or_der, verify_signature, verify_signature_with};
