//! `sfsim`: starts a seeded simulated Salesforce org and prints its login
//! host, instance URL, connected app credentials and users.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use sfsim::SimConfig;

/// Flags; each overrides the config file.
#[derive(Debug, Parser)]
#[command(
    name = "sfsim",
    version,
    about = "A simulated Salesforce org (OAuth 2.0 + REST API) for toolgate's tests and demo. Loopback only; never a real org."
)]
struct Args {
    /// TOML config file (see tests/sfsim/sfsim.example.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Login host listener.
    #[arg(long)]
    login_addr: Option<SocketAddr>,
    /// Instance (REST API) listener.
    #[arg(long)]
    instance_addr: Option<SocketAddr>,
    /// Connected app consumer key.
    #[arg(long)]
    consumer_key: Option<String>,
    /// Connected app consumer secret.
    #[arg(long)]
    consumer_secret: Option<String>,
    /// Connected app callback URL (redirect_uri must equal it).
    #[arg(long)]
    callback_url: Option<String>,
    /// Org name.
    #[arg(long)]
    org_name: Option<String>,
    /// Simulate a sandbox org (another org id).
    #[arg(long)]
    sandbox: bool,
    /// Skip the login page when login_hint names a user.
    #[arg(long)]
    auto_consent: bool,
    /// Refresh-token rotation on.
    #[arg(long)]
    rotation: bool,
    /// Records per query page.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Number of seeded Accounts (other objects scale with it).
    #[arg(long)]
    seed_accounts: Option<usize>,
}

fn config(args: Args) -> anyhow::Result<SimConfig> {
    let mut config = match &args.config {
        Some(path) => SimConfig::load(path)?,
        None => SimConfig::demo(),
    };
    if let Some(a) = args.login_addr {
        config.login_addr = a;
    }
    if let Some(a) = args.instance_addr {
        config.instance_addr = a;
    }
    if let Some(k) = args.consumer_key {
        config.connected_app.consumer_key = k;
    }
    if let Some(s) = args.consumer_secret {
        config.connected_app.consumer_secret = s;
    }
    if let Some(u) = args.callback_url {
        config.connected_app.callback_url = u;
    }
    if let Some(n) = args.org_name {
        config.org_name = n;
    }
    config.sandbox |= args.sandbox;
    config.auto_consent |= args.auto_consent;
    config.refresh_token_rotation |= args.rotation;
    if let Some(b) = args.batch_size {
        config.query_batch_size = b;
    }
    if let Some(n) = args.seed_accounts {
        config.seed_accounts = n.max(1);
    }
    Ok(config)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SFSIM_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = config(Args::parse())?;
    let running = sfsim::start(config).await?;
    let sim = &running.sim;
    let c = &sim.config;
    let records = sim.lock().records.len();
    println!(
        "sfsim ready: {} ({}), org id {}",
        c.org_name,
        if c.sandbox { "sandbox" } else { "production" },
        sim.org_id
    );
    println!("  login host:      {}", running.login_url);
    println!("  instance URL:    {}", running.instance_url);
    println!("  consumer key:    {}", c.connected_app.consumer_key);
    println!("  consumer secret: {}", c.connected_app.consumer_secret);
    println!("  callback URL:    {}", c.connected_app.callback_url);
    println!("  records seeded:  {records}");
    println!("  users:");
    for u in &c.users {
        println!("    {} ({}, {:?})", u.username, u.display_name, u.profile);
    }
    println!("  test controls:   {}/_sfsim/state", running.login_url);
    tokio::signal::ctrl_c().await?;
    running.stop().await;
    Ok(())
}
