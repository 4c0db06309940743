//! Agent footprint and load: idle RSS; 1,000 concurrent WebSocket subscribers held, each
//! receiving an insertion event; 100 clients x 100 `sign` requests with none lost or duplicated
//! (every answer matched to its request id exactly once and its signature verified).
//!
//! Goals: idle RSS <= 10 MiB; 1,000 subscribers held; 10,000 signatures, none lost or doubled.
//! Run: `cargo bench -p ukey --bench agent_footprint`.

#[path = "../tests/agent_support/mod.rs"]
mod agent_support;
#[path = "../tests/agent_support/soft.rs"]
mod soft;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use ukey_api::CertificateInfo;
use ukey_api::crypto::encoding::{base64_decode, base64_encode};
use ukey_api::crypto::prepare::SignData;
use ukey_api::crypto::verify::verify_signature;

const DEV: &str = "http://localhost:8080";
const SUBSCRIBERS: usize = 1000;
const CLIENTS: usize = 100;
const REQUESTS: usize = 100;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn connect(port: u16) -> Ws {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let mut req = format!("ws://127.0.0.1:{port}/rpc").into_client_request().unwrap();
    req.headers_mut().insert("Origin", DEV.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::client_async(req, stream).await.expect("upgrade");
    call(&mut ws, 0, "hello", json!({ "versions": [1] })).await;
    ws
}

async fn call(ws: &mut Ws, id: u64, method: &str, params: Value) -> Value {
    let text = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string();
    ws.send(Message::text(text)).await.expect("send");
    loop {
        match ws.next().await.expect("open").expect("read") {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v.get("id").is_some() {
                    return v;
                }
            }
            _ => continue,
        }
    }
}

fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    lim.current = lim.maximum;
    let _ = setrlimit(Resource::Nofile, lim);
}

fn main() {
    raise_fd_limit();
    let (agent, fx) =
        soft::with_soft_key(ukey_api::KeyAlgorithm::P256, 3, &["--dev-origin", DEV, "--pin-cache", "86400:4000000000"]);
    let pid = agent.child.as_ref().unwrap().id();
    let out = agent.ukey().args(["origins", "pair", DEV]).output().expect("pair");
    assert!(out.status.success());
    agent.script(&[&format!("pin {}", agent_support::SENTINEL_PIN)]);
    let idle = rss_kib(pid);
    println!(
        "idle agent RSS: {:.1} MiB (goal <= 10 MiB: {})",
        idle as f64 / 1024.0,
        if idle <= 10 * 1024 { "met" } else { "NOT met" }
    );

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let port = agent.port;
    rt.block_on(async {
        // 1,000 subscribers.
        let t = Instant::now();
        let mut subs = Vec::with_capacity(SUBSCRIBERS);
        for _ in 0..SUBSCRIBERS {
            let mut ws = connect(port).await;
            let r = call(&mut ws, 1, "events.subscribe", json!({})).await;
            assert!(r.get("result").is_some(), "{r}");
            subs.push(ws);
        }
        let mut status = agent.unix();
        let st = status.call("agent.status", json!({})).unwrap();
        println!(
            "{SUBSCRIBERS} WebSocket subscribers connected in {:.2} s; agent reports {} subscribers; RSS {:.1} MiB",
            t.elapsed().as_secs_f64(),
            st["subscribers"],
            rss_kib(pid) as f64 / 1024.0
        );
        assert_eq!(st["subscribers"], SUBSCRIBERS);
        let t = Instant::now();
        soft::soft_token(&soft::soft_dir(&agent), "Bob", ukey_api::KeyAlgorithm::P256, 3);
        let mut got = 0;
        for ws in subs.iter_mut() {
            loop {
                let msg = tokio::time::timeout(Duration::from_secs(30), ws.next()).await.expect("event in time");
                if let Some(Ok(Message::Text(t))) = msg {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap();
                    if v["params"]["event"]["type"] == "carrier.inserted" {
                        got += 1;
                        break;
                    }
                }
            }
        }
        println!(
            "insertion event delivered to {got}/{SUBSCRIBERS} subscribers within {:.2} s",
            t.elapsed().as_secs_f64()
        );
        assert_eq!(got, SUBSCRIBERS);
        drop(subs);

        // 100 clients x 100 sign requests.
        let cert = CertificateInfo::parse(&fx.cert_der).unwrap();
        let handle = Arc::new(fx.handle.clone());
        let t = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..CLIENTS {
            let handle = Arc::clone(&handle);
            tasks.push(tokio::spawn(async move {
                let mut ws = connect(port).await;
                let mut answers = Vec::with_capacity(REQUESTS);
                for r in 0..REQUESTS {
                    let id = (c * REQUESTS + r + 1) as u64;
                    let data = format!("client {c} request {r}");
                    let a = call(&mut ws, id, "sign", json!({ "cert": *handle, "data": base64_encode(data.as_bytes()) })).await;
                    answers.push((id, data, a));
                }
                answers
            }));
        }
        let mut seen = HashSet::new();
        let mut ok = 0;
        for task in tasks {
            for (id, data, a) in task.await.unwrap() {
                assert_eq!(a["id"], id, "answer matched to its request");
                assert!(seen.insert(id), "duplicate answer {id}");
                let sig = base64_decode(a["result"]["signature"].as_str().unwrap_or_else(|| panic!("{a}"))).unwrap();
                verify_signature(&cert.public_key, &ukey_api::Mechanism::EcdsaSha256, SignData::Message(data.as_bytes()), &sig)
                    .expect("each signature is over its own request's data");
                ok += 1;
            }
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{CLIENTS} clients x {REQUESTS} sign requests: {ok} answered and verified, 0 lost, 0 duplicated, in {secs:.1} s ({:.0}/s); RSS {:.1} MiB",
            ok as f64 / secs,
            rss_kib(pid) as f64 / 1024.0
        );
        assert_eq!(ok, CLIENTS * REQUESTS);
    });
}
