//! `vid2mp3-migrate`: brings each service's MySQL database to the newest schema.

use anyhow::Context;
use clap::Parser;
use vid2mp3_migrations::{Service, apply, redacted};

/// Applies the versioned schema of auth, gateway and notifier (or the services named).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The MySQL server, without a database name, as the migrations' account (the one allowed
    /// DDL on the services' databases: `vid2mp3_migrate`; scripts/up passes its URL, with the
    /// password from .data/secrets/mysql-vid2mp3_migrate.password).
    #[arg(
        long,
        env = "VID2MP3_MYSQL_URL",
        default_value = "mysql://vid2mp3_migrate@127.0.0.1:3306",
        hide_env_values = true
    )]
    mysql_url: String,
    /// Each service's database is this prefix followed by the service's name.
    #[arg(long, env = "VID2MP3_DATABASE_PREFIX", default_value = "vid2mp3_")]
    database_prefix: String,
    /// Services to migrate: auth, gateway, notifier (all when none are named).
    services: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = Args::parse();
    let services = if args.services.is_empty() {
        Service::ALL.to_vec()
    } else {
        args.services
            .iter()
            .map(|name| {
                Service::from_name(name).with_context(|| {
                    format!("unknown service '{name}'; the services with a database are auth, gateway, notifier")
                })
            })
            .collect::<anyhow::Result<_>>()?
    };
    for service in services {
        let database = service.database(&args.database_prefix);
        let applied = apply(service, &args.mysql_url, &database)
            .await
            .with_context(|| {
                format!(
                    "migrating {} on {}",
                    service.name(),
                    redacted(&args.mysql_url)
                )
            })?;
        let what = if applied.newly_applied.is_empty() {
            "already up to date".to_owned()
        } else {
            format!("applied {}", applied.newly_applied.join(", "))
        };
        println!(
            "{}: database {} at version {} ({what})",
            service.name(),
            applied.database,
            applied.version
        );
    }
    Ok(())
}
