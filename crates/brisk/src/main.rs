//! The `brisk` command: `serve`, `worker`, `migrate`, `seed` and `load`.

use std::process::ExitCode;

use brisk::app;
use brisk::platform::config::Config;
use brisk::platform::db::Db;
use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: see the dependency's note in
/// Cargo.toml (allocation was a fifth of the cached read path).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "brisk",
    version,
    about = "Brisk: a fast, correct ERP/CRM and commerce backend.\n\nSettings come from defaults, then BRISK_* environment variables, then flags."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (migrates the database first).
    Serve {
        #[command(flatten)]
        config: Config,
        /// Create a demo tenant if it does not exist yet and print its login.
        #[arg(long)]
        demo: bool,
    },
    /// Run only the background workers (outbox dispatch, jobs, webhook
    /// deliveries) against the database, until SIGTERM/SIGINT.
    Worker {
        #[command(flatten)]
        config: Config,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        #[command(flatten)]
        config: Config,
    },
    /// Run a load scenario against a server and write report.json and
    /// report.html. Exit 0 when every threshold holds, 1 when one breaks,
    /// 2 on a usage or connection error.
    Load(Box<brisk_load::LoadArgs>),
    /// Fill the database with a realistic business (migrates first) and
    /// print the logins it created; `--json` prints one JSON object instead.
    Seed {
        #[command(flatten)]
        config: Config,
        /// small: seconds; medium: 100,000 orders, 10,000 products;
        /// large: 1,000,000 orders, 100,000 products.
        #[arg(long, value_enum)]
        scale: brisk::seed::Scale,
        /// The same seed gives the same business data.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// One JSON object on stdout: tenants with their logins, and counts.
        #[arg(long)]
        json: bool,
        /// How the order history is written: `api` places and moves every
        /// order through the API's functions; `replay` replays the same
        /// timeline by the same rules and writes it in bulk; `auto` replays
        /// medium and large.
        #[arg(long, value_enum, default_value = "auto")]
        history: brisk::seed::History,
    },
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_env_filter(filter)
        .init();
}

/// The same JSON lines on stderr, for commands whose stdout is their answer
/// (`seed --json`).
fn init_logging_to_stderr(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is
/// called, not when it is first polled: call it before the server starts, so
/// a signal that arrives during start-up is still a graceful stop.
#[cfg(unix)]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    async move {
        match (term, interrupt) {
            (Ok(mut term), Ok(mut interrupt)) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = interrupt.recv() => {},
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

#[cfg(not(unix))]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Serve { .. } | Command::Worker { .. }) {
        return_freed_memory_promptly();
    }
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(err) => {
            eprintln!("brisk: cannot start the async runtime: {err}");
            ExitCode::FAILURE
        }
    }
}

/// mimalloc hands freed memory back to the system only after its purge
/// delay (1 s in the v3 line this binary links), and only when the thread
/// that freed it is active again. A login's argon2 block (7 MiB), freed on
/// a blocking thread that then idles, stayed resident: after 2.2 million
/// mixed requests RSS was 57.2 MiB with the default and 38.7 MiB with a
/// delay of 0, at the same throughput (BENCHMARKS.md, issue 11). mimalloc
/// reads its settings from the environment when the process loads, before
/// any Rust runs, and setting one from code needs `unsafe`; so a
/// long-running command that finds none set runs itself again, in place
/// (same process id, arguments and descriptors), with the delay at 0. An
/// operator's own `MIMALLOC_PURGE_DELAY` is left alone.
#[cfg(unix)]
fn return_freed_memory_promptly() {
    use std::os::unix::process::CommandExt;
    const PURGE_DELAY: &str = "MIMALLOC_PURGE_DELAY";
    if std::env::var_os(PURGE_DELAY).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let mut again = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        again.arg0(arg0);
    }
    // `exec` returns only when it failed.
    let err = again.args(args).env(PURGE_DELAY, "0").exec();
    eprintln!(
        "brisk: could not run again with {PURGE_DELAY}=0 ({err}); going on with the allocator's default"
    );
}

#[cfg(not(unix))]
fn return_freed_memory_promptly() {}

async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Load(args) => {
            // An https target needs the one rustls provider the binary uses.
            app::install_tls_provider();
            ExitCode::from(brisk_load::run_cli(*args).await)
        }
        Command::Seed {
            config,
            scale,
            seed,
            json,
            history,
        } => {
            init_logging_to_stderr(&config.log);
            match seed_database(config, scale, seed, history).await {
                Ok(seeded) => {
                    if json {
                        match serde_json::to_string(&seeded) {
                            Ok(text) => println!("{text}"),
                            Err(err) => {
                                eprintln!("brisk seed: {err}");
                                return ExitCode::FAILURE;
                            }
                        }
                    } else {
                        print_logins(&seeded);
                    }
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("brisk seed failed: {err}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve { config, demo } => {
            let stop = shutdown_signal();
            init_logging(&config.log);
            if demo {
                match demo_login(config.clone()).await {
                    Ok(()) => {}
                    Err(err) => {
                        tracing::error!(error = %err, "could not create the demo tenant");
                        return ExitCode::FAILURE;
                    }
                }
            }
            match app::serve_until(config, stop).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    tracing::error!(error = %err, "brisk stopped with an error");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Worker { config } => {
            let stop = shutdown_signal();
            init_logging(&config.log);
            match app::work_until(config, stop).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    tracing::error!(error = %err, "brisk worker stopped with an error");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Migrate { config } => {
            init_logging(&config.log);
            let result = async {
                let db = Db::connect(&config.database()).await?;
                db.migrate().await?;
                brisk::modules::backfill(&db).await?;
                db.close().await;
                Ok::<_, brisk::platform::db::ConnectError>(())
            }
            .await;
            match result {
                Ok(()) => {
                    tracing::info!("migrations applied");
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    tracing::error!(error = %err, "migration failed");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn demo_login(config: Config) -> Result<(), String> {
    let addr = config.addr;
    let state = app::build_state(config).await.map_err(|e| e.to_string())?;
    let login = brisk::modules::tenancy::create_demo_tenant(&state)
        .await
        .map_err(|e| e.to_string())?;
    state.db.close().await;
    println!(
        "\nDemo tenant {}.\n\n  Back office: http://{addr}/admin  (e-mail {}, password {})\n\n  API login:\n  curl -s http://{addr}/api/v1/auth/login -H 'content-type: application/json' \\\n    -d '{{\"email\":\"{}\",\"password\":\"{}\"}}'\n",
        if login.created {
            "created"
        } else {
            "already present"
        },
        login.email,
        login.password,
        login.email,
        login.password
    );
    Ok(())
}

async fn seed_database(
    config: Config,
    scale: brisk::seed::Scale,
    seed: u64,
    history: brisk::seed::History,
) -> Result<brisk::seed::Seeded, String> {
    let state = app::build_state(config).await.map_err(|e| e.to_string())?;
    let seeded = brisk::seed::run(&state, scale, seed, history)
        .await
        .map_err(|e| e.to_string());
    state.db.close().await;
    seeded
}

fn print_logins(seeded: &brisk::seed::Seeded) {
    for tenant in &seeded.tenants {
        println!("Tenant {} ({}). Logins:", tenant.name, tenant.id);
        for user in &tenant.users {
            println!("  {:<10} {}  {}", user.role, user.email, user.password);
        }
    }
    println!(
        "Seeded in {:.1}s: {}",
        seeded.seconds,
        serde_json::to_string(&seeded.counts).unwrap_or_default()
    );
}
