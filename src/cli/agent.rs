//! `ukey agent`: run the per-user agent (foreground, or `--detach`), `ukey agent status` and
//! `ukey agent stop`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use serde_json::json;

use ukey_api::Error;

use crate::agent::client::AgentClient;
use crate::agent::instance;
use crate::agent::settings::{AgentSettings, PinCacheSettings};
use crate::agent::{AgentOptions, run};
use crate::cli::Run;
use crate::cli::context::Context;
use crate::cli::error::CliResult;
use crate::registry::Registry;

/// `ukey agent [OPTIONS] [status|stop]`
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AgentArgs {
    /// Show or stop the running agent instead of starting one.
    #[command(subcommand)]
    pub command: Option<AgentCommand>,
    /// How to run the agent.
    #[command(flatten)]
    pub run: AgentRunArgs,
}

/// `ukey agent status|stop`
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Print the running agent's socket path, WebSocket port, pid and carriers.
    Status,
    /// Ask the running agent to stop.
    Stop,
    /// Start the agent with your login session: systemd user units with socket activation, or
    /// an XDG autostart entry where no systemd user manager runs.
    Install {
        /// Install the XDG autostart entry even where systemd runs.
        #[arg(long)]
        autostart: bool,
        /// Only install and enable; do not start the agent now.
        #[arg(long)]
        no_start: bool,
    },
    /// Remove what `install` installed (stopping the systemd units).
    Uninstall,
}

impl Run for AgentArgs {
    fn run(self, ctx: &Context) -> CliResult {
        let base = ctx.config.file.agent.clone();
        match self.command {
            Some(AgentCommand::Status) => status(&base, ctx.out.json),
            Some(AgentCommand::Stop) => stop(&base),
            Some(AgentCommand::Install { autostart, no_start }) => {
                crate::cli::agent_install::install(autostart, no_start)
            }
            Some(AgentCommand::Uninstall) => crate::cli::agent_install::uninstall(),
            None => {
                let settings = self.run.settings(base)?;
                if self.run.detach {
                    return Ok(run_detached(&settings)?);
                }
                // Drivers start in the background: the agent listens at once, and a slow driver
                // (a PKCS#11 module that never answers) holds up only its own carriers.
                let drivers = Registry::start_in_background(&ctx.config);
                Ok(run_foreground(settings, drivers)?)
            }
        }
    }
}

/// Options for running the agent; each overrides the `[agent]` table of the config file.
#[derive(Debug, Args, Default)]
pub struct AgentRunArgs {
    /// WebSocket and demo-page port on 127.0.0.1 and ::1 (default 24815; 0 picks a free one).
    #[arg(long, value_name = "PORT", env = "UKEY_AGENT_PORT")]
    pub port: Option<u16>,
    /// How many ports from PORT on the agent may take when another account's agent holds PORT
    /// (default 8: 24815-24822; pages search the same range).
    #[arg(long, value_name = "COUNT", env = "UKEY_AGENT_PORT_RANGE", value_parser = clap::value_parser!(u16).range(1..))]
    pub port_range: Option<u16>,
    /// Start in the background and return once it listens (output goes to
    /// $XDG_RUNTIME_DIR/ukey/agent.log).
    #[arg(long)]
    pub detach: bool,
    /// Development mode: any http:// page on localhost / 127.0.0.1 / [::1] may ask to pair.
    #[arg(long)]
    pub dev: bool,
    /// An http:// loopback origin that may ask to pair (repeatable), e.g. http://localhost:8080.
    #[arg(long = "dev-origin", value_name = "ORIGIN")]
    pub dev_origins: Vec<String>,
    /// The pinentry program for PIN and confirmation dialogs (default: pinentry).
    #[arg(long, value_name = "PROGRAM", env = "UKEY_PINENTRY")]
    pub pinentry: Option<PathBuf>,
    /// An argument for the pinentry program (repeatable).
    #[arg(long = "pinentry-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub pinentry_args: Vec<String>,
    /// Cache a PIN per (client, key) for SECONDS and at most USES further operations
    /// (default: no cache).
    #[arg(long, value_name = "SECONDS:USES")]
    pub pin_cache: Option<String>,
    /// Serve only the Unix socket (no WebSocket, no demo page).
    #[arg(long)]
    pub no_websocket: bool,
}

impl AgentRunArgs {
    /// The settings: the config file's `[agent]` table, overridden by these flags.
    pub fn settings(&self, mut s: AgentSettings) -> Result<AgentSettings, Error> {
        if let Some(p) = self.port {
            s.port = p;
        }
        if let Some(r) = self.port_range {
            s.port_range = r;
        }
        if s.port_range == 0 {
            return Err(Error::InvalidInput(
                "`port_range` in the [agent] config is 0; it counts the ports the agent may take, at least 1 \
                 (default 8)"
                    .into(),
            ));
        }
        if self.dev {
            s.allow_http_loopback = true;
        }
        s.dev_origins.extend(self.dev_origins.iter().cloned());
        if let Some(p) = &self.pinentry {
            s.pinentry.program = p.clone();
            s.pinentry.args = self.pinentry_args.clone();
        } else if !self.pinentry_args.is_empty() {
            s.pinentry.args = self.pinentry_args.clone();
        }
        if let Some(text) = &self.pin_cache {
            let (secs, uses) = text
                .split_once(':')
                .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)))
                .ok_or_else(|| {
                    Error::InvalidInput(format!("--pin-cache `{text}`: expected SECONDS:USES, e.g. 300:20"))
                })?;
            s.pin_cache = Some(PinCacheSettings { seconds: secs, uses });
        }
        if self.no_websocket {
            s.websocket = false;
        }
        Ok(s)
    }
}

/// Runs the agent in the foreground until SIGTERM/SIGINT, printing where it listens once ready.
pub fn run_foreground(
    settings: AgentSettings,
    drivers: Vec<Arc<crate::agent::background::BackgroundDriver>>,
) -> Result<(), Error> {
    if log::max_level() < log::LevelFilter::Info {
        log::set_max_level(log::LevelFilter::Info);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .thread_name("ukey-agent")
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the agent runtime", e))?;
    let gate = crate::policy::gate::CustodyGate::from_env()?;
    log::info!(
        "custody policy: {} (system directory {}); audit log {}",
        gate.policy().label(),
        gate.paths().root.display(),
        gate.audit().dir().display()
    );
    let options = AgentOptions { settings, drivers, gate: Arc::new(gate) };
    runtime.block_on(run(options, |status| {
        let mut line =
            format!("ukey agent {} (pid {}) listening on {}", status.version, status.pid, status.socket.display());
        if let Some(port) = status.port {
            line.push_str(&format!("; demo page http://127.0.0.1:{port}/"));
        }
        println!("{line}");
    }))
}

/// Starts the agent in the background (this same program, without `--detach`) and returns once
/// it listens, printing its pid and where it listens.
pub fn run_detached(settings: &AgentSettings) -> Result<(), Error> {
    let dir = instance::runtime_dir(settings.runtime_dir.as_deref())?;
    instance::ensure_private_dir(&dir)?;
    let log_path = dir.join("agent.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| Error::io(format!("opening {}", log_path.display()), e))?;
    let err_log = log.try_clone().map_err(|e| Error::io("duplicating the log handle", e))?;
    let exe = std::env::current_exe().map_err(|e| Error::io("finding the ukey program", e))?;
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--detach").collect();
    let mut child = {
        use std::os::unix::process::CommandExt;
        Command::new(exe)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .process_group(0)
            .spawn()
            .map_err(|e| Error::io("starting the agent in the background", e))?
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(exit) = child.try_wait().map_err(|e| Error::io("watching the agent start", e))? {
            let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(5).collect();
            return Err(Error::Device(format!(
                "the agent exited during start-up ({exit}); its log {} ends with:\n{}",
                log_path.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )));
        }
        if let Some(status) = instance::read_status(&dir).filter(|s| s.pid == child.id()) {
            let mut line = format!(
                "ukey agent started in the background (pid {}), socket {}",
                status.pid,
                status.socket.display()
            );
            if let Some(port) = status.port {
                line.push_str(&format!(", demo page http://127.0.0.1:{port}/"));
            }
            println!("{line}\nlog: {}", log_path.display());
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout(format!(
                "the agent did not start listening within 20 s; see {}",
                log_path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// `ukey agent status`: where the running agent listens and what it serves.
pub fn status(settings: &AgentSettings, as_json: bool) -> CliResult {
    let dir = instance::runtime_dir(settings.runtime_dir.as_deref())?;
    let socket = instance::socket_path(&dir);
    let mut client = AgentClient::connect(&socket).map_err(Error::from)?;
    let st = client.call("agent.status", json!({})).map_err(Error::from)?;
    if as_json {
        println!("{st}");
        return Ok(());
    }
    println!("ukey agent {} running, pid {}", st["version"].as_str().unwrap_or("?"), st["pid"]);
    println!("socket:    {}", st["socket"].as_str().unwrap_or("?"));
    match st["port"].as_u64() {
        Some(p) => {
            println!("websocket: ws://127.0.0.1:{p}/rpc (and [::1])");
            println!("demo page: http://127.0.0.1:{p}/");
        }
        None => println!("websocket: off"),
    }
    println!("carriers:  {}", st["carriers"]);
    println!("clients:   {} connected, {} event subscriptions", st["sessions"], st["subscribers"]);
    println!("PIN cache: {}", if st["pin_cache"].as_bool() == Some(true) { "on" } else { "off" });
    Ok(())
}

/// `ukey agent stop`.
pub fn stop(settings: &AgentSettings) -> CliResult {
    let dir = instance::runtime_dir(settings.runtime_dir.as_deref())?;
    let mut client = AgentClient::connect(&instance::socket_path(&dir)).map_err(Error::from)?;
    client.call("agent.shutdown", json!({})).map_err(Error::from)?;
    println!("the ukey agent is stopping");
    Ok(())
}
