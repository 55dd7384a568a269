//! Where webhooks live: the account defaults in the MongoDB collection `webhooks` (`_id` the
//! owner's id), a job's own callback in `job_webhooks` (`_id` the job's id), and which deliveries have been made in `webhook_deliveries` (`_id` the delivery
//! id). The secret is kept in plaintext: the sender needs it to sign every delivery.

use mongodb::bson::doc;
use mongodb::options::ReplaceOptions;
use mongodb::{Collection, Database};
use serde::{Deserialize, Serialize};
use vid2mp3_contracts::webhook::delivery_id;
use vid2mp3_contracts::{JobId, UserId};

pub const WEBHOOKS_COLLECTION: &str = "webhooks";
pub const DELIVERIES_COLLECTION: &str = "webhook_deliveries";
pub const JOB_WEBHOOKS_COLLECTION: &str = "job_webhooks";

/// An account's webhook as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredWebhook {
    #[serde(rename = "_id")]
    pub owner_id: String,
    pub url: String,
    pub secret: String,
    pub created_at: String,
}

/// One job's own callback (`_id` the job's id), named by its upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobWebhook {
    #[serde(rename = "_id")]
    pub job_id: String,
    pub url: String,
    pub secret: String,
    pub created_at: String,
}

/// A delivery that the receiver took (a 2xx): it is not sent again.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Delivered {
    #[serde(rename = "_id")]
    delivery_id: String,
    delivered_at: String,
}

#[derive(Debug, Clone)]
pub struct WebhookStore {
    webhooks: Collection<StoredWebhook>,
    jobs: Collection<JobWebhook>,
    deliveries: Collection<Delivered>,
}

impl WebhookStore {
    pub fn new(db: &Database) -> WebhookStore {
        WebhookStore {
            webhooks: db.collection(WEBHOOKS_COLLECTION),
            jobs: db.collection(JOB_WEBHOOKS_COLLECTION),
            deliveries: db.collection(DELIVERIES_COLLECTION),
        }
    }

    pub async fn get(
        &self,
        owner: &UserId,
    ) -> Result<Option<StoredWebhook>, mongodb::error::Error> {
        self.webhooks
            .find_one(doc! {"_id": owner.to_string()})
            .await
    }

    /// Sets (or replaces) the account's webhook.
    pub async fn put(&self, webhook: &StoredWebhook) -> Result<(), mongodb::error::Error> {
        self.webhooks
            .replace_one(doc! {"_id": &webhook.owner_id}, webhook)
            .with_options(ReplaceOptions::builder().upsert(true).build())
            .await?;
        Ok(())
    }

    /// Removes the account's webhook; whether there was one.
    pub async fn delete(&self, owner: &UserId) -> Result<bool, mongodb::error::Error> {
        let result = self
            .webhooks
            .delete_one(doc! {"_id": owner.to_string()})
            .await?;
        Ok(result.deleted_count > 0)
    }

    pub async fn job(&self, job: &JobId) -> Result<Option<JobWebhook>, mongodb::error::Error> {
        self.jobs.find_one(doc! {"_id": job.to_string()}).await
    }

    /// Written before the job's video is queued, so the sender always finds it.
    pub async fn put_job(&self, webhook: &JobWebhook) -> Result<(), mongodb::error::Error> {
        self.jobs
            .replace_one(doc! {"_id": &webhook.job_id}, webhook)
            .with_options(ReplaceOptions::builder().upsert(true).build())
            .await?;
        Ok(())
    }

    /// Removes the job's own callback and the records of its deliveries (they name the job).
    pub async fn delete_job(&self, job: &JobId) -> Result<(), mongodb::error::Error> {
        self.jobs.delete_one(doc! {"_id": job.to_string()}).await?;
        let ids: Vec<String> = ["done", "failed"]
            .iter()
            .map(|kind| delivery_id(job, kind))
            .collect();
        self.deliveries
            .delete_many(doc! {"_id": {"$in": ids}})
            .await?;
        Ok(())
    }

    pub async fn was_delivered(&self, delivery_id: &str) -> Result<bool, mongodb::error::Error> {
        Ok(self
            .deliveries
            .find_one(doc! {"_id": delivery_id})
            .await?
            .is_some())
    }

    /// Records a delivery the receiver took. Recording it twice (two events of one outcome
    /// delivered at once) is not an error.
    pub async fn mark_delivered(
        &self,
        delivery_id: &str,
        at: String,
    ) -> Result<(), mongodb::error::Error> {
        let record = Delivered {
            delivery_id: delivery_id.to_owned(),
            delivered_at: at,
        };
        self.deliveries
            .replace_one(doc! {"_id": delivery_id}, &record)
            .with_options(ReplaceOptions::builder().upsert(true).build())
            .await?;
        Ok(())
    }
}
