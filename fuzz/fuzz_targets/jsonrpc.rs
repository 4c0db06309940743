//! JSON-RPC 2.0 messages as any local process (Unix socket) or web page (WebSocket) sends them:
//! parsing never panics, single messages and batches are told apart, a batch never exceeds its
//! bound, and every error answer serialises with a valid `jsonrpc: "2.0"` envelope.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ukey::agent::rpc::{self, Incoming};

const MAX_BATCH: usize = 8;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let check_error = |response: &rpc::Response| {
        let json = serde_json::to_value(response).expect("responses serialise");
        assert_eq!(json["jsonrpc"], "2.0");
        assert!(json.get("id").is_some());
        assert!(response.error().is_some());
    };
    match rpc::parse(text, MAX_BATCH) {
        Ok(Incoming::Single(Ok(call))) => {
            assert!(!text.trim_start().starts_with('['));
            if let Some(params) = call.params {
                assert!(matches!(params.get().trim_start().as_bytes().first(), Some(b'{' | b'[')));
            }
        }
        Ok(Incoming::Single(Err(response))) => check_error(&response),
        Ok(Incoming::Batch(calls)) => {
            assert!(!calls.is_empty() && calls.len() <= MAX_BATCH);
            for call in calls {
                if let Err(response) = call {
                    check_error(&response);
                }
            }
        }
        Err(response) => check_error(&response),
    }
});
