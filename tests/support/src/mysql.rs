//! A MySQL database of the test's own, optionally with a service's schema applied.

use mysql_async::prelude::Queryable;
use vid2mp3_migrations::Service;

use crate::cleanup::run_to_completion;
use crate::config::{ServiceUrls, address_of};
use crate::watchdog::Watchdog;
use crate::{Unavailable, unique_name};

/// A database named `vid2mp3_t_<unique>`, dropped when this handle is dropped.
#[derive(Debug)]
pub struct MySqlDatabase {
    /// Bounds the test that holds this resource.
    _watchdog: Watchdog,
    name: String,
    server_url: String,
}

impl MySqlDatabase {
    /// An empty database on the server from [`ServiceUrls::from_env`].
    pub async fn create() -> anyhow::Result<MySqlDatabase> {
        MySqlDatabase::create_on(&ServiceUrls::from_env().mysql).await
    }

    /// An empty database on the given server (`mysql://user:password@host:port`).
    pub async fn create_on(server_url: &str) -> anyhow::Result<MySqlDatabase> {
        // The app user may create databases whose names start with `vid2mp3_` (scripts/services).
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
        conn.disconnect().await?;
        Ok(MySqlDatabase {
            _watchdog: Watchdog::arm(),
            name,
            server_url: server_url.to_owned(),
        })
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

    /// The server's URL, without a database.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// `mysql://user:password@host:port/<name>`: what a service or Spin's MySQL interface opens.
    pub fn url(&self) -> String {
        format!("{}/{}", self.server_url.trim_end_matches('/'), self.name)
    }

    /// A connection pool on this database.
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
        run_to_completion(&format!("MySQL database {name}"), async move {
            let mut conn =
                mysql_async::Conn::new(mysql_async::Opts::from_url(&server_url)?).await?;
            conn.query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
                .await?;
            conn.disconnect().await?;
            Ok(())
        });
    }
}
