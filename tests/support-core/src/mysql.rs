//! A MySQL database of the test's own, optionally with a service's schema applied, and an
//! account of its own confined to it, as each service has in production.

use anyhow::Context;
use mysql_async::prelude::Queryable;
use vid2mp3_migrations::Service;

use crate::cleanup::run_to_completion;
use crate::config::{ServiceUrls, address_of, host_port};
use crate::watchdog::Watchdog;
use crate::{Unavailable, unique_name};

/// What a service's account may do on its own database (scripts/services and deploy/ grant the
/// same): rows only, no DDL, and nothing on any other database.
pub const SERVICE_PRIVILEGES: &str = "SELECT, INSERT, UPDATE, DELETE";

/// A database named `vid2mp3_t_<unique>` and an account of the same name with
/// [`SERVICE_PRIVILEGES`] on it alone; both dropped when this handle is dropped.
#[derive(Debug)]
pub struct MySqlDatabase {
    /// Bounds the test that holds this resource.
    _watchdog: Watchdog,
    name: String,
    server_url: String,
    service_url: String,
}

impl MySqlDatabase {
    /// An empty database on the server from [`ServiceUrls::from_env`].
    pub async fn create() -> anyhow::Result<MySqlDatabase> {
        MySqlDatabase::create_on(&ServiceUrls::from_env().mysql).await
    }

    /// An empty database on the given server (`mysql://user:password@host:port`), as an account
    /// that may create `vid2mp3_t_*` databases and accounts (scripts/services' `vid2mp3_tests`).
    pub async fn create_on(server_url: &str) -> anyhow::Result<MySqlDatabase> {
        let name = unique_name("vid2mp3_t_");
        let opts = mysql_async::Opts::from_url(server_url)?;
        let unavailable = |error: mysql_async::Error| Unavailable {
            service: "MariaDB",
            script_name: "mysql",
            address: address_of(server_url),
            reason: error.to_string(),
        };
        let mut conn = mysql_async::Conn::new(opts).await.map_err(unavailable)?;
        conn.query_drop(format!("CREATE DATABASE `{name}`")).await?;
        // From here on the handle exists, so a failure below still drops the database.
        let mut database = MySqlDatabase {
            _watchdog: Watchdog::arm(),
            service_url: String::new(),
            name,
            server_url: server_url.to_owned(),
        };
        let password = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let account = &database.name;
        // In GRANT a database name is a pattern in which `_` matches any character.
        let pattern = account.replace('_', "\\_");
        let made = async {
            conn.query_drop(format!(
                "CREATE USER '{account}'@'%' IDENTIFIED BY '{password}'"
            ))
            .await?;
            conn.query_drop(format!(
                "GRANT {SERVICE_PRIVILEGES} ON `{pattern}`.* TO '{account}'@'%'"
            ))
            .await
        };
        made.await.with_context(|| {
            format!(
                "the tests' MySQL account could not make the service account {account}: it needs \
                 CREATE USER and GRANT OPTION on vid2mp3_t_* (`scripts/services start mysql` \
                 makes such an account, vid2mp3_tests, and VID2MP3_MYSQL_URL names it)"
            )
        })?;
        conn.disconnect().await?;
        let mut service_url = url::Url::parse(server_url)?;
        service_url
            .set_username(account)
            .map_err(|()| anyhow::anyhow!("{} cannot take a user name", address_of(server_url)))?;
        service_url
            .set_password(Some(&password))
            .map_err(|()| anyhow::anyhow!("{} cannot take a password", address_of(server_url)))?;
        service_url.set_path(account);
        database.service_url = service_url.to_string();
        Ok(database)
    }

    /// A database with `service`'s migrations applied, as `scripts/up` leaves the real one.
    pub async fn migrated(service: Service) -> anyhow::Result<MySqlDatabase> {
        let database = MySqlDatabase::create().await?;
        vid2mp3_migrations::apply(service, &database.server_url, &database.name).await?;
        Ok(database)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `host:port` of the server: spin.toml's `mysql_host`.
    pub fn server_host(&self) -> anyhow::Result<String> {
        host_port(&self.server_url, 3306)
    }

    /// The server's URL, without a database, as the tests' account.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// `mysql://user:password@host:port/<name>` as the tests' account, which may also do DDL:
    /// for the test's own checks and setup.
    pub fn url(&self) -> String {
        format!("{}/{}", self.server_url.trim_end_matches('/'), self.name)
    }

    /// `mysql://<name>:password@host:port/<name>`: the database's own account, with only
    /// [`SERVICE_PRIVILEGES`] on it. What the service under test gets, as in production.
    pub fn service_url(&self) -> &str {
        &self.service_url
    }

    /// A connection pool on this database, as the tests' account.
    pub fn pool(&self) -> anyhow::Result<mysql_async::Pool> {
        Ok(mysql_async::Pool::new(mysql_async::Opts::from_url(
            &self.url(),
        )?))
    }
}

impl Drop for MySqlDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let server_url = self.server_url.clone();
        run_to_completion(&format!("MySQL database and account {name}"), async move {
            let mut conn =
                mysql_async::Conn::new(mysql_async::Opts::from_url(&server_url)?).await?;
            conn.query_drop(format!("DROP USER IF EXISTS '{name}'@'%'"))
                .await?;
            conn.query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
                .await?;
            conn.disconnect().await?;
            Ok(())
        });
    }
}
