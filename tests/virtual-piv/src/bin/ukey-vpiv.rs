//! `ukey-vpiv`: runs the virtual PIV card in a vsmartcard vpcd reader until SIGTERM/SIGINT or
//! until vpcd closes the connection. Connecting inserts the card; exiting removes it.

use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, ValueEnum};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use zeroize::Zeroizing;

use ukey_vpiv::vpcd::{self, SharedCard};
use ukey_vpiv::{CardConfig, FaultPlan, MgmtAlgorithm, ShortLePolicy, VirtualPiv};

#[derive(Parser)]
#[command(about = "A virtual PIV card (NIST SP 800-73-4) for vsmartcard's vpcd: a test fixture of ukey")]
struct Args {
    /// vpcd port: 35963 is reader "Virtual PCD 00 00", 35964 is "Virtual PCD 00 01".
    #[arg(long, default_value_t = 35963)]
    port: u16,
    /// vpcd host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Keep the card's state in this file (created with the factory settings when absent), so
    /// the same card can be removed and inserted again.
    #[arg(long)]
    state_file: Option<PathBuf>,
    /// Factory PIN (6 to 8 digits). Test PINs only.
    #[arg(long, env = "UKEY_VPIV_PIN", default_value = "123456", hide_env_values = true)]
    pin: String,
    /// Factory PUK (up to 8 bytes).
    #[arg(long, env = "UKEY_VPIV_PUK", default_value = "12345678", hide_env_values = true)]
    puk: String,
    /// PIN retry limit.
    #[arg(long, default_value_t = 3)]
    pin_tries: u8,
    /// PUK retry limit.
    #[arg(long, default_value_t = 3)]
    puk_tries: u8,
    /// Management key algorithm.
    #[arg(long, value_enum, default_value_t = MgmtAlg::Tdes)]
    mgmt_alg: MgmtAlg,
    /// Management key in hex (default: 010203040506070801020304050607080102030405060708).
    #[arg(long, env = "UKEY_VPIV_MGMT_KEY", hide_env_values = true)]
    mgmt_key: Option<String>,
    /// Card GUID in hex (16 bytes; default random).
    #[arg(long)]
    guid: Option<String>,
    /// Fault plan: none, or MODE@N (drop, truncated-tlv, wrong-lengths, endless-61xx, bogus-sw)
    /// from the N-th APDU.
    #[arg(long, default_value = "none")]
    fault: FaultPlan,
    /// Select the PIV application at power-on (a card where PIV is the default application).
    #[arg(long)]
    default_selected: bool,
    /// Answer 6Cxx (instead of part of the data and 61xx) when a short Le is too small.
    #[arg(long)]
    wrong_le_6c: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum MgmtAlg {
    Tdes,
    Aes128,
    Aes192,
    Aes256,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run(Args::parse()) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("ukey-vpiv: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<ExitCode, String> {
    let config = config_from(&args)?;
    let mut card = match &args.state_file {
        Some(path) => VirtualPiv::open(path, config),
        None => VirtualPiv::new(config),
    }
    .map_err(|e| e.to_string())?;
    card.default_selected = args.default_selected;
    if args.wrong_le_6c {
        card.short_le_policy = ShortLePolicy::WrongLe6Cxx;
    }

    let addr = format!("{}:{}", args.host, args.port);
    let stream = TcpStream::connect(&addr)
        .map_err(|e| format!("cannot connect to vpcd at {addr}: {e} (is pcscd running with vsmartcard-vpcd?)"))?;
    let _ = stream.set_nodelay(true);
    log::info!("card inserted into vpcd at {addr} (fault plan: {})", args.fault);

    let stopping = Arc::new(AtomicBool::new(false));
    let mut signals = Signals::new([SIGTERM, SIGINT]).map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let control = stream.try_clone().map_err(|e| e.to_string())?;
    let flag = stopping.clone();
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            log::info!("signal {signal}: removing the card");
            flag.store(true, Ordering::SeqCst);
            let _ = control.shutdown(Shutdown::Both);
        }
    });

    let result = vpcd::serve(stream, SharedCard::new(card, args.fault));
    if stopping.load(Ordering::SeqCst) {
        return Ok(ExitCode::SUCCESS);
    }
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if args.fault.mode.is_some() => {
            log::info!("connection closed ({e})");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(format!("vpcd connection ended: {e}")),
    }
}

fn config_from(args: &Args) -> Result<CardConfig, String> {
    let mut config = CardConfig {
        pin: Zeroizing::new(args.pin.as_bytes().to_vec()),
        puk: Zeroizing::new(args.puk.as_bytes().to_vec()),
        pin_tries: args.pin_tries,
        puk_tries: args.puk_tries,
        mgmt_algorithm: match args.mgmt_alg {
            MgmtAlg::Tdes => MgmtAlgorithm::Tdes,
            MgmtAlg::Aes128 => MgmtAlgorithm::Aes128,
            MgmtAlg::Aes192 => MgmtAlgorithm::Aes192,
            MgmtAlg::Aes256 => MgmtAlgorithm::Aes256,
        },
        ..CardConfig::default()
    };
    if let Some(key) = &args.mgmt_key {
        config.mgmt_key = Zeroizing::new(hex::decode(key).map_err(|_| "--mgmt-key must be hex".to_string())?);
    } else if config.mgmt_algorithm != MgmtAlgorithm::Tdes {
        return Err("--mgmt-key is required with an AES management key".to_string());
    }
    if let Some(guid) = &args.guid {
        let bytes = hex::decode(guid).map_err(|_| "--guid must be hex".to_string())?;
        config.guid = bytes.try_into().map_err(|_| "--guid must be 16 bytes".to_string())?;
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}
