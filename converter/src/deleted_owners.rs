//! Accounts whose data was erased (`DELETE /internal/v1/owners/{owner_id}`), in the MongoDB
//! collection `deleted_owners`: one document per account, its id and when.
//!
//! The erasure writes its mark **before** it looks for the account's jobs and files, and the
//! writers that may still be under way for the account (an upload finishing, a conversion
//! finishing) look for the mark **after** they wrote: whichever comes second sees the other,
//! so nothing written by a racing request outlives the erasure. The mark holds only the random
//! user id, nothing that names a person.

use mongodb::bson::{DateTime, Document, doc};
use mongodb::{Collection, Database};
use vid2mp3_contracts::UserId;

pub const DELETED_OWNERS_COLLECTION: &str = "deleted_owners";

#[derive(Debug, Clone)]
pub struct DeletedOwners {
    owners: Collection<Document>,
}

impl DeletedOwners {
    pub fn new(db: &Database) -> DeletedOwners {
        DeletedOwners {
            owners: db.collection(DELETED_OWNERS_COLLECTION),
        }
    }

    /// Marks the account as erased (again, harmlessly, on a retry).
    pub async fn mark(&self, owner: &UserId) -> Result<(), mongodb::error::Error> {
        self.owners
            .update_one(
                doc! {"_id": owner.to_string()},
                doc! {"$setOnInsert": {"deleted_at": DateTime::now()}},
            )
            .upsert(true)
            .await?;
        Ok(())
    }

    pub async fn is_deleted(&self, owner: &UserId) -> Result<bool, mongodb::error::Error> {
        Ok(self
            .owners
            .find_one(doc! {"_id": owner.to_string()})
            .await?
            .is_some())
    }
}
