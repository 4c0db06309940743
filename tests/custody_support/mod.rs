//! Shared set-up for the custody tests: a private system directory (policy, registry, anchors,
//! in-use markers, helpdesk audit), a private holder audit log, and real soft tokens with an SM2
//! key and certificate.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ukey::agent::gate::{ClientIdentity, Gate, Operation, Outcome, UseContext};
use ukey::audit::read::{Filter, read_dir};
use ukey::audit::{Event, Record};
use ukey::policy::gate::CustodyGate;
use ukey::policy::paths::SystemPaths;
use ukey::policy::record::{CarrierRef, CustodyRecord, Holder, Right, Status};
use ukey::policy::store::Registry;
use ukey_api::crypto::{CarrierKeySigner, CertificateOptions, SignData, parse_name, prepare_input, self_signed};
use ukey_api::{
    Carrier, CertificateImport, Credential, HashAlg, KeyAlgorithm, KeyGenRequest, Mechanism, ObjectId, Pin,
};
use ukey_soft::{KdfParams, SoftDriver};

/// The user PIN of fixture tokens.
pub const USER_PIN: &str = "user-2468";
/// The SO PIN of fixture tokens.
pub const SO_PIN: &str = "so-13579";

/// A PIN.
pub fn pin(v: &str) -> Pin {
    Pin::new(v).expect("pin")
}

/// A machine of its own: system directory, holder audit log, soft-token store.
pub struct Machine {
    pub dir: tempfile::TempDir,
    pub paths: SystemPaths,
    pub audit: PathBuf,
    pub soft: SoftDriver,
}

impl Machine {
    pub fn new() -> Machine {
        let dir = tempfile::tempdir().expect("temp dir");
        let paths = SystemPaths::under(&dir.path().join("system"));
        std::fs::create_dir_all(&paths.root).unwrap();
        let soft = SoftDriver::open(dir.path().join("tokens")).with_kdf_params(KdfParams::INSECURE_FOR_TESTS).unwrap();
        Machine { audit: dir.path().join("audit"), paths, soft, dir }
    }

    /// Installs `policy.toml`.
    pub fn policy(&self, text: &str) {
        std::fs::write(&self.paths.policy_file, text).unwrap();
    }

    /// A new gate over this machine (as an agent or a CLI process would build it).
    pub fn gate(&self) -> CustodyGate {
        CustodyGate::new(self.paths.clone(), self.audit.clone())
    }

    /// A soft token with an SM2 key and a self-signed certificate.
    pub fn token(&self, label: &str) -> Token {
        let carrier = self.soft.create_token(label, &pin(SO_PIN), &pin(USER_PIN)).expect("create token");
        Token::with_key(carrier)
    }

    /// The registry.
    pub fn registry(&self) -> Registry {
        Registry::new(&self.paths.custody)
    }

    /// Registers `token` to Zhang San (Finance) for `accounts` with `rights`.
    pub fn bind(&self, token: &Token, accounts: &[&str], rights: &[Right]) -> CustodyRecord {
        let info = token.carrier.info();
        let record = CustodyRecord {
            status: Status::Active,
            accounts: accounts.iter().map(|a| a.to_string()).collect(),
            rights: rights.to_vec(),
            custodian: "Zhang San".into(),
            certificates: vec![token.cert_fp.clone()],
            registered: "2025-03-01T10:00:00Z".into(),
            issued: "2025-03-01T10:00:00Z".into(),
            operator: "test".into(),
            carrier: CarrierRef {
                serial: info.serial.clone(),
                model: info.model.clone(),
                manufacturer: info.manufacturer.clone(),
            },
            holder: Holder { name: "Zhang San".into(), id: "E1001".into(), unit: "Finance".into() },
            ..Default::default()
        };
        self.registry().write(&record).expect("write record");
        record
    }

    /// The holder audit log's records.
    pub fn records(&self) -> Vec<Record> {
        read_dir(&self.audit, &Filter::default(), None).expect("read audit").into_iter().map(|r| r.record).collect()
    }
}

/// A carrier with one SM2 key and its certificate.
pub struct Token {
    pub carrier: Arc<dyn Carrier>,
    pub key: ObjectId,
    pub spki: Vec<u8>,
    pub cert_fp: String,
}

impl Token {
    /// Generates an SM2 key and a self-signed certificate on `carrier` (user PIN [`USER_PIN`]).
    pub fn with_key(carrier: Arc<dyn Carrier>) -> Token {
        let cred = Credential::Pin(pin(USER_PIN));
        let key = carrier
            .generate_key(&KeyGenRequest { algorithm: KeyAlgorithm::Sm2, label: "sign".into(), id: None }, &cred)
            .expect("keygen");
        let spki = key.public_key.clone().expect("public key");
        let signer = CarrierKeySigner::new(carrier.as_ref(), key.id.clone(), spki.clone(), &cred).unwrap();
        let der =
            self_signed(&signer, &parse_name("CN=Zhang San,O=Finance").unwrap(), &CertificateOptions::end_entity(30))
                .expect("certificate");
        let cert = carrier
            .import_certificate(&CertificateImport { der, label: Some("sign".into()), id: Some(key.id.clone()) }, &cred)
            .expect("import");
        Token { carrier, key: key.id, spki, cert_fp: cert.info.sha256_fingerprint }
    }

    /// The gate's view of a use by `uid` through a local program.
    pub fn use_ctx(&self, uid: u32, operation: Operation, data: &[u8]) -> UseContext {
        UseContext {
            uid,
            login: None,
            client: ClientIdentity::Program { pid: std::process::id(), exe: None },
            carrier: self.carrier.info().id.clone(),
            info: self.carrier.info().clone(),
            certificate: Some(self.cert_fp.clone()),
            operation,
            data_sm3: Some(hex::encode(HashAlg::Sm3.digest(data))),
        }
    }

    /// Signs `data` with the key (SM2-SM3).
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>, ukey_api::Error> {
        let mechanism = Mechanism::Sm2Sm3 { user_id: ukey_api::DEFAULT_SM2_ID.to_vec() };
        let input = prepare_input(&mechanism, Some(&self.spki), SignData::Message(data))?;
        self.carrier.sign(&self.key, &mechanism, &input, &Credential::Pin(pin(USER_PIN)))
    }
}

/// One use through the gate as the agent and the CLI run it: examine, authorize (refusals are
/// recorded), the carrier operation, the outcome record. Returns the signature or the refusal.
pub fn gated_sign(gate: &CustodyGate, token: &Token, uid: u32, data: &[u8]) -> Result<(Vec<u8>, Vec<String>), String> {
    gated(gate, token, uid, Operation::Sign, data)
}

/// [`gated_sign`] for any operation (the carrier operation is always a signature).
pub fn gated(
    gate: &CustodyGate,
    token: &Token,
    uid: u32,
    op: Operation,
    data: &[u8],
) -> Result<(Vec<u8>, Vec<String>), String> {
    if gate.needs_examination(token.carrier.info()) {
        gate.examine(token.carrier.as_ref());
    }
    let ctx = token.use_ctx(uid, op, data);
    let permit = match gate.authorize(&ctx) {
        Ok(p) => p,
        Err(denied) => {
            let _ = gate.record(&ctx, &Outcome::Refused { reason: denied.0.clone() });
            return Err(denied.0);
        }
    };
    let notices = permit.notices.clone();
    let result = token.sign(data);
    let outcome = match &result {
        Ok(_) => Outcome::Done,
        Err(e) => Outcome::Failed { kind: e.kind().to_string() },
    };
    permit.finish(&outcome).map_err(|d| d.0)?;
    result.map(|s| (s, notices)).map_err(|e| e.to_string())
}

/// The uid and login of an account that exists on every Debian machine and is not root.
pub fn nobody() -> (u32, &'static str) {
    (65534, "nobody")
}

/// The last record of an event kind.
pub fn last_of(records: &[Record], event: Event) -> Option<&Record> {
    records.iter().rev().find(|r| r.event == event)
}

/// Fails the test (with what to do) unless it runs as root.
pub fn require_root(what: &str) {
    assert!(
        rustix::process::geteuid().is_root(),
        "{what} needs root (it mounts file systems or creates accounts); run the tests as root, as CI does (scripts/test-all)"
    );
}

/// A directory path for an extra test mount, unmounted (lazily) on drop.
pub struct Mount {
    pub path: PathBuf,
}

impl Mount {
    /// Mounts a tmpfs of `size` (e.g. `64k`) with extra `options` (e.g. `ro`) at `path`.
    pub fn tmpfs(path: &Path, size: &str, options: &str) -> Mount {
        std::fs::create_dir_all(path).unwrap();
        let opts = if options.is_empty() { format!("size={size}") } else { format!("size={size},{options}") };
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
            .arg(path)
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a tmpfs at {} failed (the test needs root and mount(8))", path.display());
        Mount { path: path.to_path_buf() }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
