//! Custody tags on real soft tokens: a tag signed by the unit's anchor binds a carrier that has
//! no registry record on this machine; a tag signed by a foreign key, altered, or copied onto
//! another carrier is refused.

mod custody_support;

use custody_support::*;
use ukey::policy::record::{Holder, Right};
use ukey::policy::tag::{TAG_APPLICATION, TAG_LABEL, TagPayload, sign_tag};
use ukey_api::crypto::{CertificateOptions, SoftwareKey, parse_name, pem::certificate_pem, self_signed};
use ukey_api::{Credential, DataObjectWrite, KeyAlgorithm};

/// A signing key and its self-signed certificate (DER).
fn unit_key(cn: &str) -> (SoftwareKey, Vec<u8>) {
    let key = SoftwareKey::generate(KeyAlgorithm::Sm2).unwrap();
    let cert = self_signed(&key, &parse_name(&format!("CN={cn}")).unwrap(), &CertificateOptions::ca(365)).unwrap();
    (key, cert)
}

fn install_anchor(m: &Machine, cert: &[u8]) {
    std::fs::create_dir_all(&m.paths.anchors).unwrap();
    std::fs::write(m.paths.anchors.join("unit.pem"), certificate_pem(cert).unwrap()).unwrap();
}

fn payload(token: &Token, accounts: &[&str]) -> TagPayload {
    TagPayload {
        unit: "Finance Bureau".into(),
        holder: Holder { name: "Zhang San".into(), id: "E1001".into(), unit: "Finance".into() },
        accounts: accounts.iter().map(|a| a.to_string()).collect(),
        rights: vec![Right::Sign],
        serial: token.carrier.info().serial.clone(),
        model: token.carrier.info().model.clone(),
        certificates: vec![token.cert_fp.clone()],
        operator: "helpdesk-li".into(),
        issued: "2025-03-01T10:00:00Z".into(),
    }
}

fn write_tag(token: &Token, bytes: Vec<u8>) {
    let w = DataObjectWrite {
        label: TAG_LABEL.into(),
        application: TAG_APPLICATION.into(),
        id: None,
        value: ukey_api::secret::secret_bytes(bytes),
        private: false,
    };
    token.carrier.write_data(&w, &Credential::Pin(pin(USER_PIN))).expect("write tag");
}

const DEV_DENY: &str = "mode = \"deny\"\ndevelopment = true\n";

#[test]
fn a_tag_signed_by_the_units_anchor_binds_an_unregistered_carrier() {
    let m = Machine::new();
    m.policy(DEV_DENY);
    let (key, cert) = unit_key("Finance Bureau custody");
    install_anchor(&m, &cert);
    let token = m.token("lent");
    write_tag(&token, sign_tag(&payload(&token, &["root"]), &key, &cert).unwrap());
    let gate = m.gate();
    let (_, notices) = gated_sign(&gate, &token, 0, b"x").expect("recognised by its tag");
    assert!(
        notices.iter().any(|n| n.contains("recognised by its custody tag") && n.contains("Finance Bureau")),
        "{notices:?}"
    );
    let (uid, login) = nobody();
    let err = gated_sign(&gate, &token, uid, b"x").unwrap_err();
    assert_eq!(err, format!("this key is registered to Zhang San (Finance); account {login} may not use it"));
}

#[test]
fn a_tag_signed_by_a_foreign_key_is_refused() {
    let m = Machine::new();
    m.policy("mode = \"warn\"\ndevelopment = true\n");
    let (_, cert) = unit_key("Finance Bureau custody");
    install_anchor(&m, &cert);
    let (foreign, foreign_cert) = unit_key("Someone Else");
    let token = m.token("stray");
    write_tag(&token, sign_tag(&payload(&token, &["root"]), &foreign, &foreign_cert).unwrap());
    let err = gated_sign(&m.gate(), &token, 0, b"x").unwrap_err();
    assert!(
        err.starts_with(
            "this key is not registered here and the custody tag is signed by a key this machine does not trust"
        ),
        "{err}"
    );
}

#[test]
fn an_altered_or_copied_tag_is_refused() {
    let m = Machine::new();
    m.policy(DEV_DENY);
    let (key, cert) = unit_key("Finance Bureau custody");
    install_anchor(&m, &cert);

    // Altered: the payload names another account, the signature is the original one.
    let token = m.token("altered");
    let good = sign_tag(&payload(&token, &["nobody"]), &key, &cert).unwrap();
    let mut tag: serde_json::Value = serde_json::from_slice(&good).unwrap();
    let forged_payload = serde_json::to_vec(&payload(&token, &["root"])).unwrap();
    tag["payload"] = serde_json::Value::String(ukey_api::crypto::encoding::base64_encode(&forged_payload));
    write_tag(&token, serde_json::to_vec(&tag).unwrap());
    let err = gated_sign(&m.gate(), &token, 0, b"x").unwrap_err();
    assert!(err.contains("signature does not verify against the unit's anchor"), "{err}");

    // Copied: a valid tag of one carrier written onto another.
    let original = m.token("original");
    let copy = m.token("copy");
    write_tag(&copy, sign_tag(&payload(&original, &["root"]), &key, &cert).unwrap());
    let err = gated_sign(&m.gate(), &copy, 0, b"x").unwrap_err();
    assert!(err.contains(&format!("was issued for carrier serial {}", original.carrier.info().serial)), "{err}");
    assert!(err.contains("it was copied"), "{err}");
}
