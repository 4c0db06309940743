//! What the custody gate adds to a signature on the soft token: the policy check (policy file,
//! custody record, catalog, in-use marker) plus the audit records (intent, and the outcome synced
//! with fdatasync). The goal: at most 1 ms at the median on top of an agent `sign`.
//!
//! Three measurements, same token, same key, same data size:
//! - `sign (no gate)`: the carrier signature alone;
//! - `sign + gate, audit on tmpfs`: the gate's own work (the sync is free on tmpfs);
//! - `sign + gate, audit on disk`: the same with the audit log where it really lives (the
//!   machine's disk, `UKEY_BENCH_AUDIT_DIR` or the target directory), fsync included.
//!
//! Run: `cargo bench -p ukey --bench policy_overhead`.

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};

use ukey::agent::gate::{ClientIdentity, Gate, Operation, Outcome, UseContext};
use ukey::policy::gate::CustodyGate;
use ukey::policy::paths::SystemPaths;
use ukey::policy::record::{CarrierRef, CustodyRecord, Holder, Right};
use ukey::policy::store::Registry;
use ukey_api::crypto::{SignData, prepare_input};
use ukey_api::{Carrier, Credential, HashAlg, KeyAlgorithm, KeyGenRequest, Mechanism, Pin};
use ukey_soft::{KdfParams, SoftDriver};

struct Setup {
    carrier: Arc<dyn Carrier>,
    key: ukey_api::ObjectId,
    spki: Vec<u8>,
    cred: Credential,
}

impl Setup {
    fn sign(&self, data: &[u8]) -> Vec<u8> {
        let mechanism = Mechanism::Sm2Sm3 { user_id: ukey_api::DEFAULT_SM2_ID.to_vec() };
        let input = prepare_input(&mechanism, Some(&self.spki), SignData::Message(data)).unwrap();
        self.carrier.sign(&self.key, &mechanism, &input, &self.cred).unwrap()
    }
}

fn gate_in(dir: &std::path::Path, audit: PathBuf, setup: &Setup) -> CustodyGate {
    let paths = SystemPaths::under(&dir.join("system"));
    std::fs::create_dir_all(&paths.root).unwrap();
    std::fs::write(&paths.policy_file, "mode = \"deny\"\ndevelopment = true\n").unwrap();
    let info = setup.carrier.info();
    let record = CustodyRecord {
        accounts: vec!["root".into(), format!("#{}", rustix::process::getuid().as_raw())],
        rights: vec![Right::Sign],
        custodian: "Zhang San".into(),
        carrier: CarrierRef {
            serial: info.serial.clone(),
            model: info.model.clone(),
            manufacturer: info.manufacturer.clone(),
        },
        holder: Holder { name: "Zhang San".into(), id: "E1".into(), unit: "Finance".into() },
        ..Default::default()
    };
    Registry::new(&paths.custody).write(&record).unwrap();
    CustodyGate::new(paths, audit)
}

fn gated_sign(gate: &CustodyGate, setup: &Setup, data: &[u8]) -> Vec<u8> {
    let ctx = UseContext {
        uid: rustix::process::getuid().as_raw(),
        login: None,
        client: ClientIdentity::Program { pid: std::process::id(), exe: None },
        carrier: setup.carrier.info().id.clone(),
        info: setup.carrier.info().clone(),
        certificate: None,
        operation: Operation::Sign,
        data_sm3: Some(hex::encode(HashAlg::Sm3.digest(data))),
    };
    let permit = gate.authorize(&ctx).unwrap();
    let sig = setup.sign(data);
    permit.finish(&Outcome::Done).unwrap();
    sig
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let soft = SoftDriver::open(dir.path().join("tokens")).with_kdf_params(KdfParams::INSECURE_FOR_TESTS).unwrap();
    let pin = Pin::new("user-2468").unwrap();
    let carrier = soft.create_token("bench", &Pin::new("so-13579").unwrap(), &pin).unwrap();
    let cred = Credential::Pin(pin);
    let key = carrier
        .generate_key(&KeyGenRequest { algorithm: KeyAlgorithm::Sm2, label: "k".into(), id: None }, &cred)
        .unwrap();
    let setup = Setup { spki: key.public_key.clone().unwrap(), key: key.id, carrier, cred };
    let data = vec![0x5a; 1024];

    let shm = tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap());
    let on_tmpfs = gate_in(shm.path(), shm.path().join("audit"), &setup);
    let disk_root = std::env::var_os("UKEY_BENCH_AUDIT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    let disk = tempfile::tempdir_in(&disk_root).unwrap();
    let on_disk = gate_in(disk.path(), disk.path().join("audit"), &setup);

    let mut group = c.benchmark_group("policy");
    group.sample_size(50);
    group.bench_function("sign (no gate)", |b| b.iter(|| setup.sign(&data)));
    group.bench_function("sign + gate, audit on tmpfs", |b| b.iter(|| gated_sign(&on_tmpfs, &setup, &data)));
    group.bench_function("sign + gate, audit on disk (fsync)", |b| b.iter(|| gated_sign(&on_disk, &setup, &data)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
