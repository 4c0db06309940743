//! Running OpenSC's tools (and openssl) against a virtual card in a leased vpcd reader.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use p256::pkcs8::EncodePublicKey;
use ukey_vpiv::harness::ReaderLease;
use ukey_vpiv::tlv;

/// OpenSC's PKCS#11 module on Debian/Ubuntu (amd64 and arm64 multiarch paths).
pub fn opensc_module() -> PathBuf {
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
        "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
        "/usr/lib/opensc-pkcs11.so",
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("opensc-pkcs11.so not found: install OpenSC (apt-get install opensc)"))
}

pub const LEASE_TIMEOUT: Duration = Duration::from_secs(300);

pub fn lease() -> ReaderLease {
    ReaderLease::acquire_any(LEASE_TIMEOUT).expect("lease a vpcd reader")
}

/// Runs a tool; a missing tool is a test failure that says what to install.
pub fn run(program: &str, args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    // OpenSC's file cache would let one card's objects leak into another test's listing.
    cmd.env("OPENSC_CONF", opensc_conf());
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {program} ({e}): install OpenSC and OpenSSL (apt-get install opensc openssl)")
    });
    eprintln!(
        "$ {program} {}\n{}{}-> {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        out.status
    );
    out
}

/// A configuration for OpenSC without the file cache, in the lock directory (shared by all
/// tests, written once, never changed).
fn opensc_conf() -> PathBuf {
    let path = ukey_vpiv::harness::lock_dir().join("opensc-nocache.conf");
    if !path.exists() {
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        std::fs::write(&tmp, "app default {\n    framework pkcs15 {\n        use_file_caching = no;\n    }\n}\n")
            .unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn all_output(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

pub fn must(out: Output) -> Output {
    assert!(out.status.success(), "command failed: {}", all_output(&out));
    out
}

/// pkcs11-tool on the token in `reader`.
pub fn pkcs11_tool(reader: &str, args: &[&str]) -> Output {
    let module = opensc_module();
    let mut full = vec!["--module", module.to_str().unwrap(), "--slot-description", reader];
    full.extend_from_slice(args);
    run("pkcs11-tool", &full, &[])
}

/// piv-tool on `reader`, authenticating with the management key in `key_file` when given.
pub fn piv_tool(reader: &str, key_file: Option<&Path>, args: &[&str]) -> Output {
    let mut full = vec!["-r", reader];
    full.extend_from_slice(args);
    match key_file {
        Some(file) => run("piv-tool", &full, &[("PIV_EXT_AUTH_KEY", file)]),
        None => run("piv-tool", &full, &[]),
    }
}

/// Writes a management key in the `XX:XX:...` text form piv-tool reads.
pub fn write_key_file(dir: &Path, key: &[u8]) -> PathBuf {
    let path = dir.join("mgmt-key.txt");
    let text: Vec<String> = key.iter().map(|b| format!("{b:02X}")).collect();
    std::fs::write(&path, text.join(":")).unwrap();
    path
}

/// The SubjectPublicKeyInfo (PEM) of a 7F49 public key template.
pub fn spki_pem(template: &[u8]) -> String {
    let inner = tlv::find(template, 0x7F49).unwrap().expect("7F49");
    if let Some(point) = tlv::find(inner, 0x86).unwrap() {
        return match point.len() {
            65 => p256::PublicKey::from_sec1_bytes(point).unwrap().to_public_key_pem(Default::default()).unwrap(),
            97 => p384::PublicKey::from_sec1_bytes(point).unwrap().to_public_key_pem(Default::default()).unwrap(),
            n => panic!("unexpected point length {n}"),
        };
    }
    let n = tlv::find(inner, 0x81).unwrap().expect("modulus");
    let e = tlv::find(inner, 0x82).unwrap().expect("exponent");
    let key = rsa::PublicKey::new(rsa::BoxedUint::from_be_slice_vartime(n), rsa::BoxedUint::from_be_slice_vartime(e))
        .unwrap();
    rsa::pkcs8::EncodePublicKey::to_public_key_pem(&key, Default::default()).unwrap()
}

/// A certificate issued for a test, in both encodings.
pub struct IssuedCert {
    /// PEM file (what piv-tool -C reads).
    pub pem: PathBuf,
    /// DER bytes (what goes into a PIV certificate object).
    pub der: Vec<u8>,
}

/// Issues a certificate for the public key in `pub_pem`, signed by a throwaway CA.
pub fn issue_certificate(dir: &Path, pub_pem: &Path, subject_cn: &str) -> IssuedCert {
    let ca_key = dir.join("ca.key");
    let ca_crt = dir.join("ca.crt");
    if !ca_key.exists() {
        must(run(
            "openssl",
            &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", ca_key.to_str().unwrap()],
            &[],
        ));
        must(run(
            "openssl",
            &[
                "req",
                "-new",
                "-x509",
                "-key",
                ca_key.to_str().unwrap(),
                "-subj",
                "/CN=ukey vpiv test CA",
                "-days",
                "30",
                "-out",
                ca_crt.to_str().unwrap(),
            ],
            &[],
        ));
    }
    let csr = dir.join(format!("{subject_cn}.csr"));
    let cert = dir.join(format!("{subject_cn}.pem"));
    must(run(
        "openssl",
        &[
            "req",
            "-new",
            "-key",
            ca_key.to_str().unwrap(),
            "-subj",
            &format!("/CN={subject_cn}"),
            "-out",
            csr.to_str().unwrap(),
        ],
        &[],
    ));
    must(run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            csr.to_str().unwrap(),
            "-CA",
            ca_crt.to_str().unwrap(),
            "-CAkey",
            ca_key.to_str().unwrap(),
            "-force_pubkey",
            pub_pem.to_str().unwrap(),
            "-days",
            "30",
            "-set_serial",
            "7",
            "-out",
            cert.to_str().unwrap(),
        ],
        &[],
    ));
    let der = must(run("openssl", &["x509", "-in", cert.to_str().unwrap(), "-outform", "DER"], &[])).stdout;
    IssuedCert { pem: cert, der }
}

/// The content of a PIV certificate object (SP 800-73-4 Table 10): certificate, CertInfo
/// (uncompressed), error detection code.
pub fn certificate_object(cert_der: &[u8]) -> Vec<u8> {
    let mut content = tlv::encode(0x70, cert_der);
    content.extend(tlv::encode(0x71, &[0x00]));
    content.extend(tlv::encode(0xFE, &[]));
    content
}
