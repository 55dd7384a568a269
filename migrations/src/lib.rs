//! Each service's MySQL schema, versioned and applied by refinery.
//!
//! The SQL lives beside this crate in one folder per service (`auth/`, `gateway/`, `notifier/`),
//! named `V<version>__<what>.sql`, and is embedded at build time so the migration binary needs no
//! files at run time (it runs as a Kubernetes Job). Applied versions are recorded in each
//! database's `refinery_schema_history`; a migration edited after it was applied is refused.

use mysql_async::prelude::Queryable;
use refinery::Migration;
use refinery::error::Kind;

mod auth {
    refinery::embed_migrations!("auth");
}
mod gateway {
    refinery::embed_migrations!("gateway");
}
mod notifier {
    refinery::embed_migrations!("notifier");
}

/// A service that owns a MySQL database. No table is written by two services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Auth,
    Gateway,
    Notifier,
}

impl Service {
    pub const ALL: [Service; 3] = [Service::Auth, Service::Gateway, Service::Notifier];

    pub fn name(self) -> &'static str {
        match self {
            Service::Auth => "auth",
            Service::Gateway => "gateway",
            Service::Notifier => "notifier",
        }
    }

    pub fn from_name(name: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The database this service uses when its name starts with `prefix` (`vid2mp3_auth`, ...).
    pub fn database(self, prefix: &str) -> String {
        format!("{prefix}{}", self.name())
    }

    /// The service's migrations in version order, as built into this binary.
    pub fn migrations(self) -> Vec<Migration> {
        let runner = match self {
            Service::Auth => auth::migrations::runner(),
            Service::Gateway => gateway::migrations::runner(),
            Service::Notifier => notifier::migrations::runner(),
        };
        let mut migrations = runner.get_migrations().clone();
        migrations.sort();
        migrations
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("'{0}' is not a usable database name: use letters, digits and '_' (at most 64)")]
    InvalidDatabaseName(String),
    #[error("'{0}' is not a MySQL URL like mysql://user:password@127.0.0.1:3306")]
    InvalidUrl(String),
    #[error("cannot reach MySQL at {server} ({source}); is it running? (scripts/services status)")]
    Unreachable {
        server: String,
        #[source]
        source: mysql_async::Error,
    },
    #[error(
        "MySQL at {server} refused this account ({source}); migrations run as the migrations' \
         account, the only one allowed DDL on the services' databases: vid2mp3_migrate (scripts/up \
         passes its URL, with the password in .data/secrets/mysql-vid2mp3_migrate.password; \
         Kubernetes the Secret's migrate-mysql-url)"
    )]
    Refused {
        server: String,
        #[source]
        source: mysql_async::Error,
    },
    #[error(
        "migration {applied} was changed after it was applied to database {database}; \
         applied migrations are history: put the change in a new migration with a higher version"
    )]
    ChangedAfterApplied { database: String, applied: String },
    #[error(
        "database {database} has migration {applied}, which this build does not have; \
         it was migrated by a newer version of vid2mp3"
    )]
    UnknownApplied { database: String, applied: String },
    #[error("applying migrations to database {database} failed: {source}")]
    Failed {
        database: String,
        #[source]
        source: refinery::Error,
    },
}

/// What a run did to one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub database: String,
    /// Migrations applied by this run, e.g. `V1__users`.
    pub newly_applied: Vec<String>,
    /// The schema version the database is at now (0 when there are no migrations).
    pub version: i64,
}

/// Applies `service`'s migrations to `database` on the server at `server_url`, creating the
/// database when it does not exist yet.
pub async fn apply(
    service: Service,
    server_url: &str,
    database: &str,
) -> Result<Applied, MigrateError> {
    apply_migrations(&service.migrations(), server_url, database).await
}

/// Applies the given migrations; [`apply`] with a service's own set is what callers want. Taking
/// the list lets tests show that an edited, already-applied migration is refused.
pub async fn apply_migrations(
    migrations: &[Migration],
    server_url: &str,
    database: &str,
) -> Result<Applied, MigrateError> {
    validate_database_name(database)?;
    let server = redacted(server_url);
    let opts = mysql_async::Opts::from_url(server_url)
        .map_err(|_| MigrateError::InvalidUrl(server.clone()))?;
    let unreachable = |source: mysql_async::Error| {
        let server = server.clone();
        match &source {
            // Access denied: to log in (1045), to a database (1044), for a command on a table
            // (1142), for a privilege (1227). Said as such, not as a server that is down.
            mysql_async::Error::Server(e) if [1044, 1045, 1142, 1227].contains(&e.code) => {
                MigrateError::Refused { server, source }
            }
            _ => MigrateError::Unreachable { server, source },
        }
    };

    let admin = mysql_async::Pool::new(opts.clone());
    let mut conn = admin.get_conn().await.map_err(unreachable)?;
    conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS `{database}`"))
        .await
        .map_err(unreachable)?;
    // Two migrators on one database (two `scripts/up` at once, a Job retried while the first still
    // runs) would each see the other's half-applied state; a named lock makes them take turns.
    let lock = format!("vid2mp3-migrate:{database}");
    let locked: Option<i64> = conn
        .exec_first("SELECT GET_LOCK(?, 60)", (lock.as_str(),))
        .await
        .map_err(unreachable)?;
    if locked != Some(1) {
        tracing::warn!(%database, "could not take the migration lock within 60 s; applying anyway");
    }

    let result = run(migrations, opts, database).await;

    // The lock dies with the connection anyway; releasing it is only politeness.
    let _ = conn
        .exec_drop("SELECT RELEASE_LOCK(?)", (lock.as_str(),))
        .await;
    drop(conn);
    let _ = admin.disconnect().await;
    result
}

async fn run(
    migrations: &[Migration],
    opts: mysql_async::Opts,
    database: &str,
) -> Result<Applied, MigrateError> {
    let mut pool = mysql_async::Pool::new(
        mysql_async::OptsBuilder::from_opts(opts).db_name(Some(database.to_owned())),
    );
    let runner = refinery::Runner::new(migrations)
        .set_abort_divergent(true)
        .set_abort_missing(true);
    let outcome = runner.run_async(&mut pool).await;
    let _ = pool.disconnect().await;
    let report = outcome.map_err(|source| classify(source, database))?;

    let newly_applied: Vec<String> = report
        .applied_migrations()
        .iter()
        .map(|m| m.to_string())
        .collect();
    let version = migrations
        .iter()
        .map(|m| i64::from(m.version()))
        .max()
        .unwrap_or(0);
    Ok(Applied {
        database: database.to_owned(),
        newly_applied,
        version,
    })
}

fn classify(source: refinery::Error, database: &str) -> MigrateError {
    let database = database.to_owned();
    match source.kind() {
        Kind::DivergentVersion(applied, _) => MigrateError::ChangedAfterApplied {
            database,
            applied: applied.to_string(),
        },
        Kind::MissingVersion(applied) => MigrateError::UnknownApplied {
            database,
            applied: applied.to_string(),
        },
        _ => MigrateError::Failed { database, source },
    }
}

fn validate_database_name(name: &str) -> Result<(), MigrateError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(MigrateError::InvalidDatabaseName(name.to_owned()))
    }
}

/// The URL without its password, fit for messages and logs.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_has_a_first_migration() {
        for service in Service::ALL {
            let migrations = service.migrations();
            assert_eq!(
                migrations.first().map(|m| m.version()),
                Some(1),
                "{service:?}"
            );
        }
    }

    #[test]
    fn database_names_are_checked() {
        assert!(validate_database_name("vid2mp3_auth").is_ok());
        for bad in ["", "x`; DROP DATABASE y; --", "has space", &"a".repeat(65)] {
            assert!(validate_database_name(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn passwords_never_reach_messages() {
        let shown = redacted("mysql://vid2mp3:s3cret@127.0.0.1:3306");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }

    #[test]
    fn service_names_round_trip() {
        for service in Service::ALL {
            assert_eq!(Service::from_name(service.name()), Some(service));
        }
        assert_eq!(Service::from_name("converter"), None);
    }
}
