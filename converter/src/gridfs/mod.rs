//! GridFS, written and read chunk by chunk by the converter itself.
//!
//! The layout is the GridFS spec's (`<bucket>.files`, `<bucket>.chunks` with `files_id`, `n`,
//! `data`), so any driver reads what this writes and the other way round. The converter does
//! its own chunk I/O rather than using the driver's streams because it needs three things they
//! do not give: a synchronous `Read + Seek` view for the demuxers (which seek around, so the
//! current chunk is cached), an mp3 writer that holds its first chunk back until the Xing tag is
//! known, and a byte-range download that starts at any chunk.
//!
//! A file becomes visible only when its files document is inserted, after every chunk: a crash
//! or an abort before that leaves chunks no one can see, which [`Bucket::delete_chunks`] or
//! [`Bucket::sweep_orphans`] removes. A resumable upload's chunks stay that way for as long as it
//! runs (hours, across requests); the sweep is told to keep them.

pub mod reader;
pub mod writer;

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Bson, Document, doc};
use mongodb::{Collection, Database, IndexModel};

pub use self::reader::GridFsReader;
pub use self::writer::GridFsWriter;

/// The GridFS default, and what every file here uses.
pub const CHUNK_SIZE: u32 = 255 * 1024;

/// The uploaded videos.
pub const VIDEOS_BUCKET: &str = "videos";
/// The converted mp3s.
pub const MP3S_BUCKET: &str = "mp3s";

#[derive(Debug, thiserror::Error)]
pub enum GridFsError {
    #[error("MongoDB: {0}")]
    Mongo(#[from] mongodb::error::Error),
    #[error("GridFS file {id} is damaged: {what}")]
    Corrupt { id: ObjectId, what: String },
    #[error("{0}")]
    Misuse(&'static str),
    /// A background chunk insert was cancelled or panicked (the runtime is shutting down).
    #[error("a chunk write was interrupted: {0}")]
    Interrupted(#[source] tokio::task::JoinError),
}

/// One bucket (`videos` or `mp3s`).
#[derive(Debug, Clone)]
pub struct Bucket {
    name: String,
    files: Collection<Document>,
    chunks: Collection<Document>,
}

/// A stored file's files document.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFile {
    pub id: ObjectId,
    pub length: u64,
    pub chunk_size: u32,
    pub filename: Option<String>,
    pub metadata: Document,
}

impl StoredFile {
    fn from_document(doc: &Document) -> Result<StoredFile, GridFsError> {
        let id = doc.get_object_id("_id").map_err(|_| {
            GridFsError::Misuse(
                "a files document whose _id is not an ObjectId (not written by vid2mp3)",
            )
        })?;
        let corrupt = |what: &str| GridFsError::Corrupt {
            id,
            what: what.to_owned(),
        };
        let length = match doc.get("length") {
            Some(Bson::Int64(n)) => u64::try_from(*n).map_err(|_| corrupt("negative length"))?,
            Some(Bson::Int32(n)) => u64::try_from(*n).map_err(|_| corrupt("negative length"))?,
            Some(Bson::Double(n)) if *n >= 0.0 && n.fract() == 0.0 => *n as u64,
            _ => return Err(corrupt("no length")),
        };
        let chunk_size = match doc.get("chunkSize") {
            Some(Bson::Int32(n)) => u32::try_from(*n).ok(),
            Some(Bson::Int64(n)) => u32::try_from(*n).ok(),
            _ => None,
        }
        .filter(|n| *n > 0)
        .ok_or_else(|| corrupt("no chunkSize"))?;
        Ok(StoredFile {
            id,
            length,
            chunk_size,
            filename: doc.get_str("filename").ok().map(str::to_owned),
            metadata: doc.get_document("metadata").cloned().unwrap_or_default(),
        })
    }

    /// Number of chunks.
    pub fn chunk_count(&self) -> u32 {
        let size = u64::from(self.chunk_size);
        u32::try_from(self.length.div_ceil(size)).unwrap_or(u32::MAX)
    }

    /// The length chunk `n` must have.
    pub fn chunk_len(&self, n: u32) -> usize {
        let size = u64::from(self.chunk_size);
        let start = u64::from(n) * size;
        self.length.saturating_sub(start).min(size) as usize
    }
}

impl Bucket {
    pub fn new(db: &Database, name: &str) -> Bucket {
        Bucket {
            name: name.to_owned(),
            files: db.collection(&format!("{name}.files")),
            chunks: db.collection(&format!("{name}.chunks")),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The indexes the GridFS spec asks for (chunk lookups by (files_id, n) depend on them), and
    /// one on the job id in the metadata.
    pub async fn ensure_indexes(&self) -> Result<(), GridFsError> {
        self.chunks
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"files_id": 1, "n": 1})
                    .options(
                        mongodb::options::IndexOptions::builder()
                            .unique(true)
                            .build(),
                    )
                    .build(),
            )
            .await?;
        self.files
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"filename": 1, "uploadDate": 1})
                    .build(),
            )
            .await?;
        // Every finished, redelivered or deleted job looks its mp3 up by job id
        // ([`Bucket::find_by_metadata`]); without this each lookup scans every stored file.
        self.files
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"metadata.job_id": 1})
                    .build(),
            )
            .await?;
        Ok(())
    }

    pub async fn file(&self, id: ObjectId) -> Result<Option<StoredFile>, GridFsError> {
        match self.files.find_one(doc! {"_id": id}).await? {
            Some(doc) => StoredFile::from_document(&doc).map(Some),
            None => Ok(None),
        }
    }

    /// A file whose metadata has `key: value` (e.g. the mp3 of a job).
    pub async fn find_by_metadata(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Option<StoredFile>, GridFsError> {
        match self
            .files
            .find_one(doc! {format!("metadata.{key}"): value})
            .await?
        {
            Some(doc) => StoredFile::from_document(&doc).map(Some),
            None => Ok(None),
        }
    }

    /// Chunk `n` of `file`, checked against the length the files document promises.
    pub async fn chunk(&self, file: &StoredFile, n: u32) -> Result<Vec<u8>, GridFsError> {
        let corrupt = |what: String| GridFsError::Corrupt { id: file.id, what };
        let doc = self
            .chunks
            .find_one(doc! {"files_id": file.id, "n": i64::from(n)})
            .await?
            .ok_or_else(|| corrupt(format!("chunk {n} is missing")))?;
        let data = match doc.get("data") {
            Some(Bson::Binary(b)) => b.bytes.clone(),
            _ => return Err(corrupt(format!("chunk {n} has no data"))),
        };
        let expected = file.chunk_len(n);
        if data.len() != expected {
            return Err(corrupt(format!(
                "chunk {n} holds {} bytes, expected {expected}",
                data.len()
            )));
        }
        Ok(data)
    }

    /// Removes a file: its files document first (it stops being visible), then its chunks.
    /// Returns whether there was a files document.
    pub async fn delete(&self, id: ObjectId) -> Result<bool, GridFsError> {
        let deleted = self.files.delete_one(doc! {"_id": id}).await?.deleted_count;
        self.delete_chunks(id).await?;
        Ok(deleted > 0)
    }

    /// Removes the chunks of a file that was never completed (or was just deleted).
    pub async fn delete_chunks(&self, id: ObjectId) -> Result<u64, GridFsError> {
        Ok(self
            .chunks
            .delete_many(doc! {"files_id": id})
            .await?
            .deleted_count)
    }

    /// Removes chunks `from_n` and later of a file being written piece by piece (a resumable
    /// upload): what an interrupted piece wrote past the offset it committed.
    pub async fn delete_chunks_from(&self, id: ObjectId, from_n: u32) -> Result<u64, GridFsError> {
        Ok(self
            .chunks
            .delete_many(doc! {"files_id": id, "n": {"$gte": i64::from(from_n)}})
            .await?
            .deleted_count)
    }

    /// Writes chunk `n` of a file assembled across requests (a resumable upload); the caller
    /// has removed any earlier copy of it ([`Bucket::delete_chunks_from`]).
    pub async fn put_chunk(&self, id: ObjectId, n: u32, data: Vec<u8>) -> Result<(), GridFsError> {
        self.insert_chunk(id, n, data).await
    }

    /// Makes a file assembled with [`Bucket::put_chunk`] visible; a repeated call (a completion
    /// tried again) finds the files document there and leaves it.
    pub async fn close_assembled(&self, file: &StoredFile) -> Result<(), GridFsError> {
        if self.files.find_one(doc! {"_id": file.id}).await?.is_some() {
            return Ok(());
        }
        self.insert_file(file).await
    }

    /// Number of chunks stored for `id` (for tests and checks).
    pub async fn count_chunks(&self, id: ObjectId) -> Result<u64, GridFsError> {
        Ok(self.chunks.count_documents(doc! {"files_id": id}).await?)
    }

    /// Files documents whose metadata has `key: value`.
    pub async fn count_by_metadata(&self, key: &str, value: &str) -> Result<u64, GridFsError> {
        Ok(self
            .files
            .count_documents(doc! {format!("metadata.{key}"): value})
            .await?)
    }

    /// A writer for a new file (its id is chosen now).
    pub fn writer(&self, hold_first_chunk: bool) -> GridFsWriter {
        GridFsWriter::new(self.clone(), ObjectId::new(), hold_first_chunk)
    }

    /// Deletes chunks older than `min_age` that belong to no file: what a crash mid-write left.
    /// The age guard keeps it away from files other processes are writing right now.
    /// `keep`: files still being assembled (resumable uploads under way), whose chunks have
    /// no files document yet by design.
    pub async fn sweep_orphans(
        &self,
        min_age: Duration,
        keep: &std::collections::HashSet<ObjectId>,
    ) -> Result<u64, GridFsError> {
        let cutoff = SystemTime::now()
            .checked_sub(min_age)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let cutoff_secs = cutoff
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let cutoff_id = object_id_at(u32::try_from(cutoff_secs).unwrap_or(u32::MAX));
        let ids = self
            .chunks
            .distinct("files_id", doc! {"_id": {"$lt": cutoff_id}, "n": 0_i64})
            .await?;
        let mut removed = 0;
        for id in ids {
            let Bson::ObjectId(id) = id else { continue };
            if keep.contains(&id) {
                continue;
            }
            if self.files.find_one(doc! {"_id": id}).await?.is_none() {
                removed += self.delete_chunks(id).await?;
            }
        }
        Ok(removed)
    }

    async fn insert_chunk(&self, id: ObjectId, n: u32, data: Vec<u8>) -> Result<(), GridFsError> {
        self.chunks
            .insert_one(doc! {
                "_id": ObjectId::new(),
                "files_id": id,
                "n": i64::from(n),
                "data": mongodb::bson::Binary {
                    subtype: mongodb::bson::spec::BinarySubtype::Generic,
                    bytes: data,
                },
            })
            .await?;
        Ok(())
    }

    async fn insert_file(&self, file: &StoredFile) -> Result<(), GridFsError> {
        let mut doc = doc! {
            "_id": file.id,
            "length": i64::try_from(file.length).unwrap_or(i64::MAX),
            "chunkSize": i64::from(file.chunk_size),
            "uploadDate": mongodb::bson::DateTime::now(),
            "metadata": file.metadata.clone(),
        };
        if let Some(name) = &file.filename {
            doc.insert("filename", name.clone());
        }
        self.files.insert_one(doc).await?;
        Ok(())
    }

    /// Bytes `start..=end` of `file`, as a stream of chunk slices (one chunk in memory at a time).
    pub fn byte_range(
        &self,
        file: StoredFile,
        start: u64,
        end_inclusive: u64,
    ) -> impl Stream<Item = Result<Bytes, GridFsError>> + Send + 'static {
        let bucket = self.clone();
        let size = u64::from(file.chunk_size);
        let first = u32::try_from(start / size).unwrap_or(u32::MAX);
        futures::stream::try_unfold(
            (bucket, file, first, start, end_inclusive),
            move |(bucket, file, n, pos, end)| async move {
                if pos > end || file.length == 0 {
                    return Ok(None);
                }
                let data = bucket.chunk(&file, n).await?;
                let chunk_start = u64::from(n) * size;
                let from = (pos - chunk_start) as usize;
                let to = ((end - chunk_start + 1) as usize).min(data.len());
                let piece = Bytes::from(data).slice(from..to);
                let next_pos = chunk_start + to as u64;
                Ok(Some((piece, (bucket, file, n + 1, next_pos, end))))
            },
        )
    }
}

/// The smallest ObjectId of a given second (for "older than" queries on `_id`).
fn object_id_at(secs: u32) -> ObjectId {
    let mut bytes = [0u8; 12];
    bytes[..4].copy_from_slice(&secs.to_be_bytes());
    ObjectId::from_bytes(bytes)
}

/// Collects a byte stream (tests and small files).
pub async fn collect(
    stream: impl Stream<Item = Result<Bytes, GridFsError>>,
) -> Result<Vec<u8>, GridFsError> {
    stream
        .try_fold(Vec::new(), |mut acc, piece| async move {
            acc.extend_from_slice(&piece);
            Ok(acc)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(length: u64) -> StoredFile {
        StoredFile {
            id: ObjectId::new(),
            length,
            chunk_size: 10,
            filename: None,
            metadata: Document::new(),
        }
    }

    #[test]
    fn chunk_lengths_follow_the_file_length() {
        let f = file(25);
        assert_eq!(f.chunk_count(), 3);
        assert_eq!(
            (
                f.chunk_len(0),
                f.chunk_len(1),
                f.chunk_len(2),
                f.chunk_len(3)
            ),
            (10, 10, 5, 0)
        );
        assert_eq!(file(20).chunk_count(), 2);
        assert_eq!(file(0).chunk_count(), 0);
    }

    #[test]
    fn files_documents_parse_whatever_integer_width_a_driver_wrote() {
        let id = ObjectId::new();
        for length in [Bson::Int32(7), Bson::Int64(7), Bson::Double(7.0)] {
            let parsed = StoredFile::from_document(
                &doc! {"_id": id, "length": length, "chunkSize": 261_120, "filename": "a"},
            )
            .unwrap();
            assert_eq!((parsed.length, parsed.chunk_size), (7, CHUNK_SIZE));
        }
        assert!(StoredFile::from_document(&doc! {"_id": id, "chunkSize": 1}).is_err());
        assert!(
            StoredFile::from_document(&doc! {"_id": id, "length": -1, "chunkSize": 1}).is_err()
        );
    }

    #[test]
    fn object_ids_for_a_time_sort_before_later_ones() {
        let earlier = object_id_at(1_000);
        assert!(earlier < ObjectId::new());
        assert_eq!(earlier.timestamp().timestamp_millis(), 1_000_000);
    }
}
