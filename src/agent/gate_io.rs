//! The gate's file work off the agent's async workers.
//!
//! Asking the custody gate and recording an outcome do blocking I/O: reading the registry, an
//! `flock` on the in-use markers and on the audit log's `HEAD`, an append and an `fdatasync`
//! (milliseconds on a busy disk, far more on a slow or network file system). On the two async
//! workers that would stall every other client of the agent, so these calls run on tokio's
//! blocking pool. The guarantees stay as they were:
//! - fail closed: an outcome that cannot be recorded (an error, or the blocking task lost) is a
//!   refusal, and the result is withheld;
//! - no delivered result without its record: the caller only gets the result after the outcome
//!   record is synced; if the request is abandoned while the record is being written, the write
//!   still completes (the blocking task is not cancelled) and the result is dropped undelivered;
//! - a permit dropped unfinished (a cancelled request) is recorded as abandoned — also on the
//!   blocking pool ([`PermitGuard`]).

use std::sync::Arc;

use crate::agent::gate::{Denied, Gate, Outcome, Permit, UseContext};

/// Asks the gate on the blocking pool. A refusal is put on record there too (an error recording
/// it is logged; the use stays refused).
pub async fn authorize(gate: &Arc<dyn Gate>, ctx: &UseContext) -> Result<PermitGuard, Denied> {
    let (gate, ctx) = (Arc::clone(gate), ctx.clone());
    let joined = tokio::task::spawn_blocking(move || match gate.authorize(&ctx) {
        Ok(permit) => Ok(permit),
        Err(denied) => {
            if let Err(e) = gate.record(&ctx, &Outcome::Refused { reason: denied.0.clone() }) {
                log::error!("a refusal could not be put on record: {e}");
            }
            Err(denied)
        }
    })
    .await;
    match joined {
        Ok(Ok(permit)) => Ok(PermitGuard(Some(permit))),
        Ok(Err(denied)) => Err(denied),
        Err(e) => Err(Denied(format!("the custody check stopped before it decided ({e}); the use is refused"))),
    }
}

/// Records the outcome of a permitted use on the blocking pool. `Err`: it is not on record, and
/// the use's result must not be delivered.
pub async fn finish(mut guard: PermitGuard, outcome: Outcome) -> Result<(), Denied> {
    let Some(permit) = guard.0.take() else { return Ok(()) };
    match tokio::task::spawn_blocking(move || permit.finish(&outcome)).await {
        Ok(done) => done,
        Err(e) => Err(Denied(format!("recording the outcome stopped before it was written ({e})"))),
    }
}

/// Records a use that never got as far as the gate's permit (its carrier's queue was full, timed
/// out, or the carrier was removed while it waited), on the blocking pool. `Err`: it could not be
/// put on record either; the use failed anyway, so the caller only logs it.
pub async fn record(gate: &Arc<dyn Gate>, ctx: &UseContext, outcome: Outcome) -> Result<(), Denied> {
    let (gate, ctx) = (Arc::clone(gate), ctx.clone());
    match tokio::task::spawn_blocking(move || gate.record(&ctx, &outcome)).await {
        Ok(done) => done,
        Err(e) => Err(Denied(format!("recording the outcome stopped before it was written ({e})"))),
    }
}

/// What a use run through [`run_gated`] came to.
pub enum GatedRun<T> {
    /// The gate refused it; the refusal is on record (an error recording it was logged).
    Refused(Denied),
    /// It ran and its outcome is on record: the result may be delivered.
    Settled(Result<T, ukey_api::Error>),
    /// It ran, but its outcome could not be put on record: the result (dropped here) must not
    /// be delivered.
    Unrecorded(Denied),
    /// It ran and failed in a way the caller recovers from under the same permit (a cached PIN
    /// the carrier rejected: the holder is asked next); the permit is still open.
    Reopened(PermitGuard, ukey_api::Error),
}

/// One whole use on the current thread — ask the gate, run `op`, record the outcome (synced) —
/// for callers already on the blocking pool inside the carrier's queue. It is the same sequence
/// as [`authorize`], the carrier call and [`finish`], with the same guarantees (the intent is on
/// record before `op` touches the carrier; a result whose outcome is not durably recorded is
/// withheld), in one hop to the blocking pool instead of three: each hop is a thread hand-off
/// and a wake-up of an async worker, the largest part of the agent's own cost per signature.
/// `reopen` picks the failures that leave the permit open for the caller ([`GatedRun::Reopened`]).
pub fn run_gated<T>(
    gate: &dyn Gate,
    ctx: &UseContext,
    op: impl FnOnce() -> Result<T, ukey_api::Error>,
    reopen: impl Fn(&ukey_api::Error) -> bool,
) -> GatedRun<T> {
    let permit = match gate.authorize(ctx) {
        Ok(permit) => permit,
        Err(denied) => {
            if let Err(e) = gate.record(ctx, &Outcome::Refused { reason: denied.0.clone() }) {
                log::error!("a refusal could not be put on record: {e}");
            }
            return GatedRun::Refused(denied);
        }
    };
    for notice in &permit.notices {
        log::warn!("{} on {}: {notice}", ctx.operation.describe(), ctx.carrier);
    }
    let result = match op() {
        Err(e) if reopen(&e) => return GatedRun::Reopened(PermitGuard(Some(permit)), e),
        other => other,
    };
    let outcome = match &result {
        Ok(_) => Outcome::Done,
        Err(e) => Outcome::Failed { kind: e.kind().to_string() },
    };
    match permit.finish(&outcome) {
        Ok(()) => GatedRun::Settled(result),
        Err(denied) => GatedRun::Unrecorded(denied),
    }
}

/// A permit whose unfinished drop (the request was cancelled) records the abandoned use on the
/// blocking pool instead of the async worker that dropped it.
#[must_use = "finish the permit with gate_io::finish"]
pub struct PermitGuard(Option<Permit>);

impl PermitGuard {
    /// What the person should be told although the use is allowed.
    pub fn notices(&self) -> &[String] {
        self.0.as_ref().map(|p| p.notices.as_slice()).unwrap_or_default()
    }
}

impl Drop for PermitGuard {
    fn drop(&mut self) {
        let Some(permit) = self.0.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(move || drop(permit));
            }
            Err(_) => drop(permit),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::mpsc::{Receiver, Sender, channel};
    use std::time::Duration;

    use ukey_api::{CarrierId, CarrierInfo, CarrierKind};

    use super::*;
    use crate::agent::gate::{ClientIdentity, Operation, Settle};

    const DEADLINE: Duration = Duration::from_secs(10);

    /// A gate whose audit "disk" is stuck until the test releases it: authorize and the outcome
    /// record each wait for one release.
    struct StuckDisk {
        release: Mutex<Receiver<()>>,
        outcomes: Arc<Mutex<Vec<Outcome>>>,
        fail_outcome: bool,
    }

    impl StuckDisk {
        fn wait(&self) -> Result<(), Denied> {
            let rx = self.release.lock().unwrap_or_else(|p| p.into_inner());
            rx.recv_timeout(DEADLINE).map_err(|_| Denied("the disk was never released".into()))
        }
    }

    struct Recorder {
        gate: Arc<StuckDisk>,
    }

    impl Settle for Recorder {
        fn settle(&mut self, outcome: &Outcome) -> Result<(), Denied> {
            self.gate.wait()?;
            if self.gate.fail_outcome {
                return Err(Denied("audit directory is read-only".into()));
            }
            self.gate.outcomes.lock().unwrap_or_else(|p| p.into_inner()).push(outcome.clone());
            Ok(())
        }
    }

    struct SharedGate(Arc<StuckDisk>);

    impl Gate for SharedGate {
        fn authorize(&self, _ctx: &UseContext) -> Result<Permit, Denied> {
            self.0.wait()?;
            Ok(Permit::new(Vec::new(), Box::new(Recorder { gate: Arc::clone(&self.0) })))
        }

        fn record(&self, _ctx: &UseContext, _outcome: &Outcome) -> Result<(), Denied> {
            Ok(())
        }
    }

    /// The outcomes the stuck disk recorded.
    type Recorded = Arc<Mutex<Vec<Outcome>>>;

    fn gate(fail_outcome: bool) -> (Arc<dyn Gate>, Sender<()>, Recorded) {
        let (tx, rx) = channel();
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let disk = Arc::new(StuckDisk { release: Mutex::new(rx), outcomes: Arc::clone(&outcomes), fail_outcome });
        (Arc::new(SharedGate(disk)), tx, outcomes)
    }

    fn ctx() -> UseContext {
        let id = CarrierId::new(CarrierKind::Soft, &["test"]);
        let info = CarrierInfo {
            id: id.clone(),
            kind: CarrierKind::Soft,
            label: "test".into(),
            manufacturer: "ukey".into(),
            model: "soft".into(),
            serial: "1".into(),
            location: String::new(),
            atr: None,
            usb: None,
            catalog_entry: None,
            software: true,
            read_only: false,
            initialized: true,
        };
        UseContext {
            uid: 0,
            login: None,
            client: ClientIdentity::Program { pid: 1, exe: None },
            carrier: id,
            info,
            certificate: None,
            operation: Operation::Sign,
            data_sm3: None,
        }
    }

    /// One async worker: if the gate's I/O ran on it, the task that releases the stuck disk could
    /// never run, and the gate would time out and refuse.
    fn one_worker() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn a_stuck_audit_disk_does_not_stall_the_async_worker() {
        let (gate, release, outcomes) = gate(false);
        one_worker().block_on(async move {
            let other_client = tokio::spawn({
                let release = release.clone();
                async move { release.send(()).unwrap() }
            });
            let guard = authorize(&gate, &ctx()).await.expect("allowed once the disk is released");
            other_client.await.unwrap();
            let other_client = tokio::spawn(async move { release.send(()).unwrap() });
            finish(guard, Outcome::Done).await.expect("recorded once the disk is released");
            other_client.await.unwrap();
        });
        assert_eq!(*outcomes.lock().unwrap(), vec![Outcome::Done]);
    }

    #[test]
    fn an_outcome_that_cannot_be_recorded_is_a_refusal() {
        let (gate, release, outcomes) = gate(true);
        one_worker().block_on(async move {
            release.send(()).unwrap();
            release.send(()).unwrap();
            let guard = authorize(&gate, &ctx()).await.unwrap();
            let err = finish(guard, Outcome::Done).await.expect_err("fail closed");
            assert!(err.0.contains("read-only"), "{err}");
        });
        assert!(outcomes.lock().unwrap().is_empty());
    }

    #[test]
    fn a_permit_dropped_unfinished_is_recorded_as_abandoned() {
        let (gate, release, outcomes) = gate(false);
        let runtime = one_worker();
        runtime.block_on(async move {
            release.send(()).unwrap();
            release.send(()).unwrap();
            let guard = authorize(&gate, &ctx()).await.unwrap();
            drop(guard);
        });
        // Dropping the runtime waits for its blocking tasks.
        drop(runtime);
        assert_eq!(*outcomes.lock().unwrap(), vec![Outcome::Failed { kind: "Abandoned".into() }]);
    }

    /// A gate that refuses every use and keeps what it put on record.
    struct Refusing(Recorded);

    impl Gate for Refusing {
        fn authorize(&self, _ctx: &UseContext) -> Result<Permit, Denied> {
            Err(Denied("this carrier is suspended".into()))
        }

        fn record(&self, _ctx: &UseContext, outcome: &Outcome) -> Result<(), Denied> {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).push(outcome.clone());
            Ok(())
        }
    }

    #[test]
    fn a_one_hop_use_is_on_record_before_its_result_is_handed_back() {
        let (gate, release, outcomes) = gate(false);
        release.send(()).unwrap();
        release.send(()).unwrap();
        let ran = run_gated(gate.as_ref(), &ctx(), || Ok(7), |_| false);
        assert!(matches!(ran, GatedRun::Settled(Ok(7))));
        assert_eq!(*outcomes.lock().unwrap(), vec![Outcome::Done]);
    }

    #[test]
    fn a_one_hop_use_whose_outcome_cannot_be_recorded_is_withheld() {
        let (gate, release, outcomes) = gate(true);
        release.send(()).unwrap();
        release.send(()).unwrap();
        let ran = run_gated(gate.as_ref(), &ctx(), || Ok(7), |_| false);
        assert!(matches!(&ran, GatedRun::Unrecorded(d) if d.0.contains("read-only")));
        assert!(outcomes.lock().unwrap().is_empty());
    }

    #[test]
    fn a_one_hop_use_refused_by_the_gate_never_runs_and_the_refusal_is_recorded() {
        let recorded: Recorded = Arc::new(Mutex::new(Vec::new()));
        let gate = Refusing(Arc::clone(&recorded));
        let ran = run_gated(
            &gate,
            &ctx(),
            || -> Result<(), ukey_api::Error> { panic!("the carrier was touched") },
            |_| false,
        );
        assert!(matches!(&ran, GatedRun::Refused(d) if d.0.contains("suspended")));
        assert_eq!(*recorded.lock().unwrap(), vec![Outcome::Refused { reason: "this carrier is suspended".into() }]);
    }

    #[test]
    fn a_rejected_cached_pin_leaves_the_permit_open_for_the_dialog() {
        let (gate, release, outcomes) = gate(false);
        release.send(()).unwrap();
        release.send(()).unwrap();
        let wrong = || -> Result<(), ukey_api::Error> {
            Err(ukey_api::Error::WrongPin { role: ukey_api::PinRole::User, retries_left: Some(2), detail: None })
        };
        let reopen = |e: &ukey_api::Error| matches!(e, ukey_api::Error::WrongPin { .. });
        let GatedRun::Reopened(guard, _) = run_gated(gate.as_ref(), &ctx(), wrong, reopen) else {
            panic!("the permit was not left open")
        };
        assert!(outcomes.lock().unwrap().is_empty(), "nothing settled yet");
        one_worker().block_on(finish(guard, Outcome::Done)).expect("the dialog's outcome is recorded");
        assert_eq!(*outcomes.lock().unwrap(), vec![Outcome::Done]);
    }
}
