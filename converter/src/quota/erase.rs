//! Forgetting an account's quota records when the account is erased.

use mongodb::bson::doc;
use vid2mp3_contracts::{JobId, UserId};

use super::QuotaStore;

impl QuotaStore {
    /// Removes every upload reservation and minutes claim of `owner`; returns how many.
    pub async fn forget_owner(&self, owner: &UserId) -> Result<u64, mongodb::error::Error> {
        let filter = doc! {"owner_id": owner.to_string()};
        let uploads = self
            .uploads
            .delete_many(filter.clone())
            .await?
            .deleted_count;
        let media = self.media.delete_many(filter).await?.deleted_count;
        Ok(uploads + media)
    }

    /// Removes the minutes claim of one job (of an erased account: a job deleted on its own
    /// keeps its claim, since the work was done).
    pub async fn forget_job(&self, job: &JobId) -> Result<(), mongodb::error::Error> {
        self.media.delete_one(doc! {"_id": job.to_string()}).await?;
        Ok(())
    }
}
