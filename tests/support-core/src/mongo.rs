//! A MongoDB database of the test's own (GridFS buckets and collections live inside it).

use crate::cleanup::run_to_completion;
use crate::config::{ServiceUrls, address_of};
use crate::watchdog::Watchdog;
use crate::{Unavailable, unique_name};

/// A database `vid2mp3_t_<unique>`, dropped when this handle is dropped.
#[derive(Debug)]
pub struct MongoDatabase {
    /// Bounds the test that holds this resource.
    _watchdog: Watchdog,
    name: String,
    url: String,
    client: mongodb::Client,
}

impl MongoDatabase {
    pub async fn create() -> anyhow::Result<MongoDatabase> {
        MongoDatabase::create_on(&ServiceUrls::from_env().mongo).await
    }

    pub async fn create_on(url: &str) -> anyhow::Result<MongoDatabase> {
        let client = client_for(url).await?;
        let name = unique_name("vid2mp3_t_");
        // Mongo creates a database on first write; `hello` proves the server answers now.
        client
            .database("admin")
            .run_command(mongodb::bson::doc! {"hello": 1})
            .await
            .map_err(|error| Unavailable {
                service: "MongoDB",
                script_name: "mongo",
                address: address_of(url),
                reason: error.to_string(),
            })?;
        Ok(MongoDatabase {
            _watchdog: Watchdog::arm(),
            name,
            url: url.to_owned(),
            client,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server's connection string (the database name is passed separately).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn database(&self) -> mongodb::Database {
        self.client.database(&self.name)
    }
}

async fn client_for(url: &str) -> anyhow::Result<mongodb::Client> {
    let mut options = mongodb::options::ClientOptions::parse(url).await?;
    // Fail within seconds, not the driver's default 30, when the server is down.
    options.server_selection_timeout = Some(std::time::Duration::from_secs(3));
    Ok(mongodb::Client::with_options(options)?)
}

impl Drop for MongoDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let url = self.url.clone();
        run_to_completion(&format!("MongoDB database {name}"), async move {
            // The handle's client belongs to the test's runtime; this thread needs its own.
            client_for(&url).await?.database(&name).drop().await?;
            Ok(())
        });
    }
}
