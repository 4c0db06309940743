//! Third-party proof for keys and certificates: keys generated on the virtual card with
//! piv-tool, certificates loaded with piv-tool or PUT DATA, listed by OpenSC's PKCS#11 module,
//! signatures made through pkcs11-tool and verified by openssl.

mod opensc_support;

use std::path::Path;

use opensc_support::*;
use sha2::{Digest, Sha256};
use ukey_vpiv::harness::InsertedCard;
use ukey_vpiv::{CardConfig, KeyAlgorithm, VirtualPiv, objects};

/// Generates a key in `slot` with piv-tool (management key, mutual authentication), issues a
/// certificate for it and loads it with piv-tool; returns the public key PEM path.
fn piv_tool_key_and_certificate(
    inserted: &InsertedCard<'_>,
    reader: &str,
    dir: &Path,
    slot: &str,
    alg: &str,
    cn: &str,
) -> std::path::PathBuf {
    let key_file = write_key_file(dir, &ukey_vpiv::config::DEFAULT_MGMT_KEY);
    let out = piv_tool(reader, Some(&key_file), &["-A", "M:9B:03", "-G", &format!("{slot}:{alg}")]);
    // OpenSC 0.23's piv-tool cannot rebuild the returned public key with OpenSSL 3 (fixed in
    // 0.24); the card generated the key all the same, and we take its public key from the card.
    let text = all_output(&out);
    assert!(out.status.success() || text.contains("unable to gen"), "piv-tool -G: {text}");
    let slot_byte = u8::from_str_radix(slot, 16).unwrap();
    let template = inserted.slot().card.public_key_template(slot_byte).expect("the card holds the new key");
    let pub_pem = dir.join(format!("{slot}.pub.pem"));
    std::fs::write(&pub_pem, spki_pem(&template)).unwrap();
    let cert = issue_certificate(dir, &pub_pem, cn);
    let out = piv_tool(reader, Some(&key_file), &["-A", "M:9B:03", "-C", slot, "-i", cert.pem.to_str().unwrap()]);
    // OpenSC 0.23's piv-tool exits with the byte count written by -C, not 0; success shows as
    // silence and, decisively, as the certificate object on the card.
    assert!(all_output(&out).trim().is_empty(), "piv-tool -C: {}", all_output(&out));
    let object = inserted.slot().card.object(objects::cert_tag_for_slot(slot_byte).unwrap()).map(<[u8]>::to_vec);
    let object = object.expect("piv-tool wrote the certificate object");
    assert_eq!(ukey_vpiv::tlv::find(&object, 0x70).unwrap(), Some(cert.der.as_slice()));
    pub_pem
}

#[test]
fn pkcs11_lists_certificates_signs_with_ecdsa_and_derives_with_ecdh_openssl_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let lease = lease();
    let reader = lease.reader_name();
    let inserted = lease.insert(VirtualPiv::new(CardConfig::default()).unwrap()).expect("insert");

    let pub_9a = piv_tool_key_and_certificate(&inserted, reader, dir.path(), "9A", "11", "vpiv-9A");
    assert_eq!(inserted.slot().card.key_algorithm(0x9A), Some(KeyAlgorithm::EccP256));

    // A retired key (slot 82) with its certificate written as an issuer would, by PUT DATA.
    let template = inserted.slot().card.generate_key_directly(0x82, KeyAlgorithm::EccP384).unwrap();
    let pub_82 = dir.path().join("82.pub.pem");
    std::fs::write(&pub_82, spki_pem(&template)).unwrap();
    let cert_82 = issue_certificate(dir.path(), &pub_82, "vpiv-82").der;
    inserted.slot().card.set_object(objects::cert_tag_for_slot(0x82).unwrap(), certificate_object(&cert_82)).unwrap();
    // The key history object (SP 800-73-4 Table 19) tells hosts how many retired slots, from 82
    // on, hold a key with its certificate on the card; OpenSC reads retired slots only then.
    let mut history = ukey_vpiv::tlv::encode(0xC1, &[1]);
    history.extend(ukey_vpiv::tlv::encode(0xC2, &[0]));
    history.extend(ukey_vpiv::tlv::encode(0xFE, &[]));
    inserted.slot().card.set_object(objects::KEY_HISTORY, history).unwrap();

    let listing = stdout(&must(pkcs11_tool(reader, &["-O", "--login", "--pin", "123456"])));
    assert!(listing.contains("subject:    DN: CN=vpiv-9A"), "{listing}");
    assert!(listing.contains("subject:    DN: CN=vpiv-82"), "{listing}");
    let private_keys = listing.matches("Private Key Object; EC").count();
    let public_keys = listing.matches("Public Key Object; EC").count();
    assert_eq!((private_keys, public_keys), (2, 2), "{listing}");

    // ECDSA (raw digest) with the PIV authentication key, id 01.
    let digest = Sha256::digest(b"signed through OpenSC");
    let digest_file = dir.path().join("digest.bin");
    std::fs::write(&digest_file, digest).unwrap();
    let sig = dir.path().join("sig.der");
    must(pkcs11_tool(
        reader,
        &[
            "--login",
            "--pin",
            "123456",
            "--sign",
            "-m",
            "ECDSA",
            "--id",
            "01",
            "-i",
            digest_file.to_str().unwrap(),
            "-o",
            sig.to_str().unwrap(),
            "--signature-format",
            "openssl",
        ],
    ));
    let verified = must(run(
        "openssl",
        &[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            pub_9a.to_str().unwrap(),
            "-in",
            digest_file.to_str().unwrap(),
            "-sigfile",
            sig.to_str().unwrap(),
        ],
        &[],
    ));
    assert!(stdout(&verified).contains("Signature Verified Successfully"));

    // Retired slots hold key management keys (usage derive): ECDH with the P-384 key, id 05,
    // against a peer key made by openssl; both sides must reach the same secret.
    let peer_key = dir.path().join("peer.key");
    let peer_pub = dir.path().join("peer.pub.der");
    must(run(
        "openssl",
        &["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", peer_key.to_str().unwrap()],
        &[],
    ));
    must(run(
        "openssl",
        &["pkey", "-in", peer_key.to_str().unwrap(), "-pubout", "-outform", "DER", "-out", peer_pub.to_str().unwrap()],
        &[],
    ));
    let card_secret = dir.path().join("card.secret");
    must(pkcs11_tool(
        reader,
        &[
            "--login",
            "--pin",
            "123456",
            "--derive",
            "-m",
            "ECDH1-DERIVE",
            "--id",
            "05",
            "-i",
            peer_pub.to_str().unwrap(),
            "-o",
            card_secret.to_str().unwrap(),
        ],
    ));
    let ours = must(run(
        "openssl",
        &["pkeyutl", "-derive", "-inkey", peer_key.to_str().unwrap(), "-peerkey", pub_82.to_str().unwrap()],
        &[],
    ))
    .stdout;
    assert_eq!(std::fs::read(&card_secret).unwrap(), ours, "ECDH secrets agree");
    inserted.remove().expect("remove");
}

#[test]
fn rsa_2048_signature_with_the_pin_always_signature_key() {
    let dir = tempfile::tempdir().unwrap();
    let lease = lease();
    let reader = lease.reader_name();
    let inserted = lease.insert(VirtualPiv::new(CardConfig::default()).unwrap()).expect("insert");
    let pub_9c = piv_tool_key_and_certificate(&inserted, reader, dir.path(), "9C", "07", "vpiv-9C");
    assert_eq!(inserted.slot().card.key_algorithm(0x9C), Some(KeyAlgorithm::Rsa2048));

    let listing = stdout(&must(pkcs11_tool(reader, &["-O", "--login", "--pin", "123456"])));
    assert!(listing.contains("subject:    DN: CN=vpiv-9C"), "{listing}");
    assert!(listing.contains("Private Key Object; RSA"), "{listing}");
    assert!(
        listing.contains("Access:     always authenticate") || listing.contains("always authenticate"),
        "9C needs the PIN each time: {listing}"
    );

    let data = dir.path().join("data.txt");
    std::fs::write(&data, b"contract text").unwrap();
    let sig = dir.path().join("sig.bin");
    inserted.slot().ins_log.clear();
    must(pkcs11_tool(
        reader,
        &[
            "--login",
            "--pin",
            "123456",
            "--sign",
            "-m",
            "SHA256-RSA-PKCS",
            "--id",
            "02",
            "-i",
            data.to_str().unwrap(),
            "-o",
            sig.to_str().unwrap(),
        ],
    ));
    must(run(
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-verify",
            pub_9c.to_str().unwrap(),
            "-signature",
            sig.to_str().unwrap(),
            data.to_str().unwrap(),
        ],
        &[],
    ));
    // The card accepted the signature only because a VERIFY came right before it.
    // (The 256-byte block makes the GENERAL AUTHENTICATE a chain of two APDUs.)
    let log = inserted.slot().ins_log.clone();
    let verify = log.iter().rposition(|ins| *ins == 0x20).expect("a VERIFY");
    let after = &log[verify + 1..];
    assert!(
        after.contains(&0x87) && after.iter().all(|ins| matches!(ins, 0x87 | 0xC0)),
        "VERIFY right before the signature: {log:02X?}"
    );
    inserted.remove().expect("remove");
}

#[test]
fn pkcs11_tool_self_test_with_rsa_keys() {
    let dir = tempfile::tempdir().unwrap();
    let lease = lease();
    let reader = lease.reader_name();
    let inserted = lease.insert(VirtualPiv::new(CardConfig::default()).unwrap()).expect("insert");
    piv_tool_key_and_certificate(&inserted, reader, dir.path(), "9A", "07", "vpiv-test-9A");
    piv_tool_key_and_certificate(&inserted, reader, dir.path(), "9D", "07", "vpiv-test-9D");
    let out = pkcs11_tool(reader, &["--test", "--login", "--pin", "123456"]);
    let text = all_output(&out);
    assert!(out.status.success(), "pkcs11-tool --test: {text}");
    assert!(!text.contains("ERR") && text.contains("No errors"), "{text}");
    inserted.remove().expect("remove");
}
