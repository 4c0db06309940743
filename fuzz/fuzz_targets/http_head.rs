//! The HTTP request head every loopback connection starts with (any local process or web page
//! can send one): reading it never panics, stays within its size bound, and a header sent twice
//! reads as absent (no smuggling a second Host or Origin past the checks).
#![no_main]

use std::pin::pin;
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use ukey::agent::http::{MAX_HEAD, read_head};

fuzz_target!(|data: &[u8]| {
    let mut stream = data;
    let mut future = pin!(read_head(&mut stream));
    let mut cx = Context::from_waker(Waker::noop());
    // Reading from a byte slice is always ready: the head is read in a bounded number of polls.
    let mut outcome = None;
    for _ in 0..(MAX_HEAD / 1024 + 4) {
        if let Poll::Ready(result) = future.as_mut().poll(&mut cx) {
            outcome = Some(result);
            break;
        }
    }
    let outcome = outcome.expect("read_head finished on in-memory input");
    if let Ok((head, rest)) = outcome {
        assert!(data.len() - rest.len() <= MAX_HEAD + 1024);
        for (name, _) in &head.headers {
            assert_eq!(name, &name.to_ascii_lowercase());
            if head.repeated(name) {
                assert_eq!(head.header(name), None);
            }
        }
        let _ = head.header_has_token("connection", "upgrade");
    }
});
