//! Catalog lookups on the seed catalog: ATR (exact, family pattern, miss), USB id and module.
//! Drivers run these on every insertion and enumeration, so they should cost microseconds.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

fn atr(text: &str) -> Vec<u8> {
    text.split_whitespace().filter_map(|b| u8::from_str_radix(b, 16).ok()).collect()
}

fn matching(c: &mut Criterion) {
    let (catalog, _) = ukey_catalog::load_seed();
    let yubikey = atr("3B FD 13 00 00 81 31 FE 15 80 73 C0 21 C0 57 59 75 62 69 4B 65 79 40");
    let epass = atr("3B 9F 95 81 31 FE 9F 00 66 46 53 05 10 04 31 71 DF 00 00 00 00 00 26");
    let unknown = atr("3B 9F 95 81 31 FE 9F 00 65 46 53 05 30 06 71 DF 00 00 00 80 6A 82 5E");

    c.bench_function("match_atr exact (YubiKey 5)", |b| b.iter(|| catalog.match_atr(black_box(&yubikey))));
    c.bench_function("match_atr pattern (ePass2003)", |b| b.iter(|| catalog.match_atr(black_box(&epass))));
    c.bench_function("match_atr miss", |b| b.iter(|| catalog.match_atr(black_box(&unknown))));
    c.bench_function("match_usb hit", |b| b.iter(|| catalog.match_usb(black_box(0x1050), black_box(0x0407))));
    c.bench_function("match_usb miss", |b| b.iter(|| catalog.match_usb(black_box(0x1234), black_box(0x5678))));
    c.bench_function("match_module path", |b| {
        b.iter(|| catalog.match_module(black_box("/usr/lib/x86_64-linux-gnu/libykcs11.so")))
    });
    c.bench_function("load_seed", |b| b.iter(ukey_catalog::load_seed));
}

criterion_group!(benches, matching);
criterion_main!(benches);
