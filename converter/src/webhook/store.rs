//! Where webhooks live: the account defaults in the MongoDB collection `webhooks` (`_id` the
//! owner's id), and which deliveries have been made in `webhook_deliveries` (`_id` the delivery
//! id). The secret is kept in plaintext: the sender needs it to sign every delivery.

use mongodb::bson::doc;
use mongodb::options::ReplaceOptions;
use mongodb::{Collection, Database};
use serde::{Deserialize, Serialize};
use vid2mp3_contracts::UserId;

pub const WEBHOOKS_COLLECTION: &str = "webhooks";
pub const DELIVERIES_COLLECTION: &str = "webhook_deliveries";

/// An account's webhook as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredWebhook {
    #[serde(rename = "_id")]
    pub owner_id: String,
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
    deliveries: Collection<Delivered>,
}

impl WebhookStore {
    pub fn new(db: &Database) -> WebhookStore {
        WebhookStore {
            webhooks: db.collection(WEBHOOKS_COLLECTION),
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
