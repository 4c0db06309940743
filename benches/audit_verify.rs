//! `ukey audit verify` over a large log: the goal is 1,000,000 records in under 5 s.
//!
//! The log is generated once per run (records shaped like the agent's: intent + outcome pairs,
//! rotated every 64 MiB like a real log) straight through the line encoder, then verified.
//! `UKEY_BENCH_RECORDS` changes the size (default 1,000,000).
//!
//! Run: `cargo bench -p ukey --bench audit_verify`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};

use ukey::audit::files::{Head, file_name, open_head, write_head};
use ukey::audit::record::{GENESIS, body_hash, encode_line};
use ukey::audit::{Event, Record, verify_dir};

/// Writes `n` chained records into `dir`, rotating at `rotate` bytes like the writer does.
fn generate(dir: &Path, n: u64, rotate: u64) {
    let mut prev = GENESIS.to_string();
    let mut seq = 0u64;
    let mut out = BufWriter::new(File::create(dir.join(file_name(1))).unwrap());
    let mut written = 0u64;
    let push = |r: &mut Record, out: &mut BufWriter<File>, seq: &mut u64, prev: &mut String| -> u64 {
        *seq += 1;
        r.seq = *seq;
        r.prev = prev.clone();
        r.time = "2025-03-01T10:00:00.123Z".into();
        let (line, hash) = encode_line(r).unwrap();
        out.write_all(&line).unwrap();
        *prev = hash;
        line.len() as u64
    };
    while seq < n {
        let mut r = if seq % 2 == 0 { Record::new(Event::Intent) } else { Record::new(Event::Use) };
        r.uid = Some(1000);
        r.account = Some("alice".into());
        r.client = Some("https://bank.example".into());
        r.carrier = Some("pkcs11:/usr/lib/softhsm/libsofthsm2.so slot 1:5c1b0a3f".into());
        r.serial = Some("5c1b0a3f2e4d6c8b".into());
        r.cert = Some("9f".repeat(32));
        r.op = Some("sign".into());
        r.data_sm3 = Some(body_hash(&seq.to_le_bytes()));
        if r.event == Event::Use {
            r.intent = Some(seq);
            r.result = Some("done".into());
            r.policy = Some("enforced".into());
            r.holder = Some("Zhang San".into());
        }
        written += push(&mut r, &mut out, &mut seq, &mut prev);
        if written >= rotate && seq + 1 < n {
            let next = file_name(seq + 2);
            let mut seal = Record::new(Event::Seal).with_detail("next", next.clone());
            push(&mut seal, &mut out, &mut seq, &mut prev);
            out.flush().unwrap();
            out = BufWriter::new(File::create(dir.join(next)).unwrap());
            written = 0;
        }
    }
    out.flush().unwrap();
    write_head(&open_head(dir).unwrap(), &Head { seq, hash: prev }).unwrap();
}

fn bench(c: &mut Criterion) {
    let n: u64 = std::env::var("UKEY_BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    generate(dir.path(), n, 64 * 1024 * 1024);
    eprintln!("generated {n} records in {:.2?}", t.elapsed());
    let report = verify_dir(dir.path(), &[]).unwrap();
    assert!(report.ok(), "{:?}", report.findings);
    assert_eq!(report.last_seq, Some(n));
    let mut group = c.benchmark_group("audit");
    group.sample_size(10);
    group.bench_function(format!("verify {n} records"), |b| {
        b.iter(|| {
            let r = verify_dir(dir.path(), &[]).unwrap();
            assert!(r.ok());
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
