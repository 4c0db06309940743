//! Hot-plug latency: from the virtual card's vpcd connection (the physical insertion) to ukey's
//! `Inserted` event, against a bare `SCardGetStatusChange` loop watching the same reader in the
//! same run (pcscd's own detection).
//!
//!     cargo bench -p ukey-pcsc --bench hotplug_latency [-- ROUNDS]
//!
//! Goal: ukey's event within 20 ms of pcscd's. ukey reports the card (`Inserted`, provisional
//! id) as soon as pcscd does and identifies it afterwards (`Identified`: connect, SELECT, CHUID,
//! discovery); both are measured.

use std::ffi::CString;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ukey_api::{CarrierEvent, Driver, EventSink};
use ukey_iso7816::PivOptions;
use ukey_pcsc::PcscDriver;
use ukey_vpiv::harness::ReaderLease;
use ukey_vpiv::{CardConfig, VirtualPiv};

/// Waits in a bare loop until the reader shows a card, and returns when it did.
fn bare_wait(reader: &CString, ready: mpsc::Sender<()>) -> Instant {
    let ctx = pcsc::Context::establish(pcsc::Scope::User).expect("pcscd");
    let mut states = [pcsc::ReaderState::new(reader.clone(), pcsc::State::UNAWARE)];
    ctx.get_status_change(Duration::ZERO, &mut states).expect("initial state");
    states[0].sync_current_state();
    let _ = ready.send(());
    loop {
        ctx.get_status_change(Duration::from_secs(30), &mut states).expect("status change");
        if states[0].event_state().contains(pcsc::State::PRESENT) {
            return Instant::now();
        }
        states[0].sync_current_state();
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    let rounds: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(5);
    let lease = ReaderLease::acquire_any(Duration::from_secs(300)).expect("vpcd reader (pcscd + vsmartcard-vpcd)");
    let reader = CString::new(lease.reader_name()).expect("reader");
    let driver = PcscDriver::new(PivOptions::default());
    let (tx, rx) = mpsc::channel::<(Instant, CarrierEvent)>();
    let tx = Mutex::new(tx);
    let sink: EventSink = Arc::new(move |e| {
        let now = Instant::now();
        if let Ok(tx) = tx.lock() {
            let _ = tx.send((now, e));
        }
    });
    let _watch = driver.watch(sink).expect("watch");
    let (mut ukey_ms, mut pcscd_ms, mut identified_ms) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        while rx.try_recv().is_ok() {}
        let (ready_tx, ready_rx) = mpsc::channel();
        let r = reader.clone();
        let bare = std::thread::spawn(move || bare_wait(&r, ready_tx));
        ready_rx.recv_timeout(Duration::from_secs(10)).expect("bare watcher ready");
        let inserted = lease.insert(VirtualPiv::new(CardConfig::default()).expect("card")).expect("insert");
        let connected = inserted.connected_at;
        let pcscd_seen = bare.join().expect("bare watcher");
        let here = |e: &CarrierEvent| match e {
            CarrierEvent::Inserted { info } | CarrierEvent::Identified { info, .. } => {
                info.location == lease.reader_name()
            }
            _ => false,
        };
        let (mut ukey_seen, mut ukey_identified) = (None, None);
        while ukey_identified.is_none() {
            let (at, event) = rx.recv_timeout(Duration::from_secs(30)).expect("ukey Inserted/Identified event");
            match event {
                CarrierEvent::Inserted { .. } if here(&event) => ukey_seen = Some(at),
                CarrierEvent::Identified { .. } if here(&event) => ukey_identified = Some(at),
                _ => {}
            }
        }
        let ukey_seen = ukey_seen.expect("Inserted comes before Identified");
        ukey_ms.push(ukey_seen.duration_since(connected).as_secs_f64() * 1e3);
        if let Some(at) = ukey_identified {
            identified_ms.push(at.duration_since(connected).as_secs_f64() * 1e3);
        }
        pcscd_ms.push(pcscd_seen.duration_since(connected).as_secs_f64() * 1e3);
        inserted.remove().expect("remove");
    }
    let diffs: Vec<f64> = ukey_ms.iter().zip(&pcscd_ms).map(|(u, p)| u - p).collect();
    println!("insertion → event, {rounds} rounds (ms)");
    println!("  bare get_status_change: median {:.1}  all {:?}", median(pcscd_ms.clone()), pcscd_ms);
    println!("  ukey Inserted event:    median {:.1}  all {:?}", median(ukey_ms.clone()), ukey_ms);
    println!("  ukey − pcscd:           median {:.1} ms (goal ≤ 20)  all {:?}", median(diffs.clone()), diffs);
    println!("  ukey Identified event:  median {:.1}  all {:?}", median(identified_ms.clone()), identified_ms);
}
