//! The saga against a fake store that fails at each step: whatever fails, what is left behind
//! is nothing (no blob, no chunk, no record, no message, no reservation), and the answer is the
//! one the gateway expects.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Step {
    Admit,
    Cover,
    Write,
    Close,
    Create,
    Backlog,
    Publish,
}

#[derive(Debug)]
struct Blob {
    bytes: u64,
    /// Closed: its files document is written.
    visible: bool,
}

#[derive(Debug, Default)]
struct World {
    /// The step that fails, and at which of its calls (0: the first).
    fail: Option<(Step, usize)>,
    calls: HashMap<Step, usize>,
    /// Reservations held, by id.
    reservations: HashMap<u32, u64>,
    next_reservation: u32,
    blobs: HashMap<ObjectId, Blob>,
    records: HashMap<JobId, JobRecord>,
    published: Vec<(VideoJob, u8)>,
    /// How many jobs the owner has in flight besides this upload's record.
    other_jobs: u64,
}

impl World {
    /// Counts a call of `step`; true when this call is the one that fails.
    fn fails(&mut self, step: Step) -> bool {
        let n = self.calls.entry(step).or_insert(0);
        let this = *n;
        *n += 1;
        self.fail == Some((step, this))
    }
}

#[derive(Debug, Clone, Default)]
struct Fake(Arc<Mutex<World>>);

impl Fake {
    fn failing_at(step: Step, call: usize) -> Fake {
        let fake = Fake::default();
        fake.world().fail = Some((step, call));
        fake
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.0.lock().unwrap()
    }

    /// Nothing of the upload is left: no blob or chunk, no record, no message, no reservation.
    #[track_caller]
    fn assert_nothing_left(&self) {
        let world = self.world();
        assert!(world.blobs.is_empty(), "blobs left: {:?}", world.blobs);
        assert!(
            world.records.is_empty(),
            "records left: {:?}",
            world.records
        );
        assert!(
            world.published.is_empty(),
            "published: {:?}",
            world.published
        );
        assert!(
            world.reservations.is_empty(),
            "reservations left: {:?}",
            world.reservations
        );
    }
}

fn unavailable() -> mongodb::error::Error {
    mongodb::error::Error::from(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "the fake store is down",
    ))
}

struct FakeHold {
    fake: Fake,
    id: u32,
}

impl Admission for Fake {
    type Hold = FakeHold;

    async fn admit(
        &self,
        _owner: &UserId,
        _job: &JobId,
        _declared: Option<u64>,
    ) -> Result<FakeHold, QuotaError> {
        let mut world = self.world();
        if world.fails(Step::Admit) {
            return Err(QuotaError::Exceeded(
                crate::quota::QuotaExceeded::queued_jobs(3, 3),
            ));
        }
        let id = world.next_reservation;
        world.next_reservation += 1;
        world.reservations.insert(id, 0);
        Ok(FakeHold {
            fake: self.clone(),
            id,
        })
    }

    async fn active_jobs(&self, _owner: &UserId) -> Result<u64, mongodb::error::Error> {
        let mut world = self.world();
        if world.fails(Step::Backlog) {
            return Err(unavailable());
        }
        Ok(world.other_jobs + world.records.len() as u64)
    }
}

impl Hold for FakeHold {
    async fn cover(&mut self, total: u64) -> Result<(), QuotaError> {
        let mut world = self.fake.world();
        if world.fails(Step::Cover) {
            return Err(QuotaError::Exceeded(
                crate::quota::QuotaExceeded::stored_bytes(10, total, 10, false),
            ));
        }
        world.reservations.insert(self.id, total);
        Ok(())
    }

    async fn release(self) {
        self.fake.world().reservations.remove(&self.id);
    }
}

struct FakeWriter {
    fake: Fake,
    id: ObjectId,
    len: u64,
}

impl Blobs for Fake {
    type Writer = FakeWriter;

    fn create(&self) -> FakeWriter {
        FakeWriter {
            fake: self.clone(),
            id: ObjectId::new(),
            len: 0,
        }
    }

    async fn remove(&self, id: ObjectId) -> Result<(), GridFsError> {
        self.world().blobs.remove(&id);
        Ok(())
    }
}

impl BlobWriter for FakeWriter {
    fn id(&self) -> ObjectId {
        self.id
    }

    fn len(&self) -> u64 {
        self.len
    }

    async fn write(&mut self, data: &[u8]) -> Result<(), GridFsError> {
        let mut world = self.fake.world();
        // A chunk is stored either way: a failed write may leave chunks before the failure.
        let blob = world.blobs.entry(self.id).or_insert(Blob {
            bytes: 0,
            visible: false,
        });
        blob.bytes += data.len() as u64;
        if world.fails(Step::Write) {
            return Err(GridFsError::Mongo(unavailable()));
        }
        self.len += data.len() as u64;
        Ok(())
    }

    async fn close(self, _filename: &str, _metadata: Document) -> Result<(), GridFsError> {
        let mut world = self.fake.world();
        // The last chunk goes in before the files document: a failed close leaves chunks.
        world.blobs.entry(self.id).or_insert(Blob {
            bytes: 0,
            visible: false,
        });
        if world.fails(Step::Close) {
            return Err(GridFsError::Mongo(unavailable()));
        }
        if let Some(blob) = world.blobs.get_mut(&self.id) {
            blob.visible = true;
        }
        Ok(())
    }

    async fn abort(self) -> Result<(), GridFsError> {
        self.fake.world().blobs.remove(&self.id);
        Ok(())
    }
}

impl Jobs for Fake {
    async fn create(&self, job: NewJob) -> Result<Created, JobStateError> {
        let mut world = self.world();
        if world.fails(Step::Create) {
            return Err(JobStateError::Mongo(unavailable()));
        }
        if let Some(existing) = world.records.get(&job.job_id) {
            return Ok(Created::Existing(existing.clone()));
        }
        let id = job.job_id;
        let record = JobRecord::new(job);
        world.records.insert(id, record.clone());
        Ok(Created::New(record))
    }

    async fn remove(&self, job: &JobId) -> Result<(), JobStateError> {
        self.world().records.remove(job);
        Ok(())
    }
}

impl JobQueue for Fake {
    async fn publish_job(
        &self,
        payload: &[u8],
        _message_id: &str,
        priority: u8,
    ) -> Result<(), QueueError> {
        let mut world = self.world();
        if world.fails(Step::Publish) {
            return Err(QueueError::Timeout(Duration::from_secs(15)));
        }
        let job: VideoJob = serde_json::from_slice(payload).expect("a VideoJob");
        world.published.push((job, priority));
        Ok(())
    }
}

const MAX: u64 = 1 << 20;

fn upload() -> Upload {
    Upload {
        job: JobId::new(),
        owner: UserId::new(),
        owner_email: "someone@example.com".into(),
        original_name: "talk.mp4".into(),
        content_type: "video/mp4".into(),
        profile: QualityProfile::default(),
        loudness_lufs: None,
    }
}

type Piece = Result<Bytes, std::io::Error>;

/// A body of three pieces of 1000 bytes.
fn body() -> Vec<Piece> {
    (0..3).map(|_| Ok(Bytes::from(vec![7_u8; 1000]))).collect()
}

async fn run(fake: &Fake, upload: Upload, pieces: Vec<Piece>) -> Result<Stored, ApiError> {
    let metrics = Metrics::new().unwrap();
    let saga = Saga {
        admission: fake,
        blobs: fake,
        jobs: fake,
        queue: fake,
        metrics: &metrics,
        max_upload_bytes: MAX,
    };
    saga.store(upload, None, futures::stream::iter(pieces))
        .await
}

#[track_caller]
fn status(result: Result<Stored, ApiError>) -> StatusCode {
    match result {
        Ok(stored) => panic!("expected a failure, got {stored:?}"),
        Err(error) => error.into_response().status(),
    }
}

#[tokio::test]
async fn a_stored_upload_is_recorded_and_queued_and_its_reservation_released() {
    let fake = Fake::default();
    fake.world().other_jobs = 2;
    let upload = upload();
    let job = upload.job;
    let Ok(Stored::New(record)) = run(&fake, upload, body()).await else {
        panic!("not stored");
    };
    let world = fake.world();
    assert_eq!(record.job_id, job.to_string());
    assert_eq!(record.video_size_bytes, 3000);
    assert_eq!(world.records.len(), 1);
    let blob = world.blobs.get(&record.video_fid.parse().unwrap()).unwrap();
    assert!(blob.visible);
    assert_eq!(blob.bytes, 3000);
    assert_eq!(world.published.len(), 1);
    let (message, priority) = &world.published[0];
    assert_eq!(message.job_id, job);
    assert_eq!(message.video_fid.as_str(), record.video_fid);
    // Two other jobs in flight: two below the top priority.
    assert_eq!(*priority, video_priority(2));
    assert!(world.reservations.is_empty());
}

#[tokio::test]
async fn a_refused_admission_leaves_nothing() {
    let fake = Fake::failing_at(Step::Admit, 0);
    assert_eq!(
        status(run(&fake, upload(), body()).await),
        StatusCode::TOO_MANY_REQUESTS
    );
    fake.assert_nothing_left();
}

#[tokio::test]
async fn a_piece_over_the_stored_bytes_quota_removes_the_chunks_before_it() {
    // The first piece is covered and written, the second is refused.
    let fake = Fake::failing_at(Step::Cover, 1);
    assert_eq!(
        status(run(&fake, upload(), body()).await),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(fake.world().calls.get(&Step::Write), Some(&1));
    fake.assert_nothing_left();
}

#[tokio::test]
async fn a_body_over_the_upload_limit_removes_the_chunks_before_it() {
    let fake = Fake::default();
    let pieces = vec![
        Ok(Bytes::from(vec![1_u8; 1000])),
        Ok(Bytes::from(vec![1_u8; MAX as usize])),
    ];
    assert_eq!(
        status(run(&fake, upload(), pieces).await),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    fake.assert_nothing_left();
}

#[tokio::test]
async fn a_failed_chunk_write_removes_the_chunks() {
    let fake = Fake::failing_at(Step::Write, 1);
    assert_eq!(
        status(run(&fake, upload(), body()).await),
        StatusCode::SERVICE_UNAVAILABLE
    );
    fake.assert_nothing_left();
}

#[tokio::test]
async fn a_body_that_ends_early_removes_the_chunks() {
    let fake = Fake::default();
    let pieces = vec![
        Ok(Bytes::from(vec![1_u8; 1000])),
        Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the client went away",
        )),
    ];
    assert_eq!(
        status(run(&fake, upload(), pieces).await),
        StatusCode::BAD_REQUEST
    );
    fake.assert_nothing_left();
}

#[tokio::test]
async fn a_failed_close_removes_the_chunks_it_wrote() {
    let fake = Fake::failing_at(Step::Close, 0);
    assert_eq!(
        status(run(&fake, upload(), body()).await),
        StatusCode::SERVICE_UNAVAILABLE
    );
    fake.assert_nothing_left();
}

#[tokio::test]
async fn a_failed_job_record_removes_the_video() {
    let fake = Fake::failing_at(Step::Create, 0);
    assert_eq!(
        status(run(&fake, upload(), body()).await),
        StatusCode::SERVICE_UNAVAILABLE
    );
    fake.assert_nothing_left();
}

#[tokio::test]
async fn a_concurrent_put_that_won_keeps_its_video_and_ours_is_removed() {
    let fake = Fake::default();
    let upload = upload();
    // The winner's record and video, stored while our body streamed.
    let theirs = ObjectId::new();
    let winner = JobRecord::new(NewJob {
        job_id: upload.job,
        owner_id: upload.owner,
        owner_email: upload.owner_email.clone(),
        original_name: upload.original_name.clone(),
        content_type: upload.content_type.clone(),
        profile: upload.profile,
        loudness_lufs: None,
        video_fid: theirs.to_hex().parse().unwrap(),
        video_size_bytes: 3000,
    });
    {
        let mut world = fake.world();
        world.records.insert(upload.job, winner.clone());
        world.blobs.insert(
            theirs,
            Blob {
                bytes: 3000,
                visible: true,
            },
        );
    }
    let Ok(Stored::Existing(existing)) = run(&fake, upload, body()).await else {
        panic!("the winner's record was not answered");
    };
    assert_eq!(existing, winner);
    let world = fake.world();
    assert_eq!(world.blobs.keys().collect::<Vec<_>>(), vec![&theirs]);
    assert_eq!(world.records.len(), 1);
    assert!(world.published.is_empty());
    assert!(world.reservations.is_empty());
}

#[tokio::test]
async fn a_failed_backlog_count_removes_the_record_and_the_video() {
    let fake = Fake::failing_at(Step::Backlog, 0);
    assert_eq!(
        status(run(&fake, upload(), body()).await),
        StatusCode::SERVICE_UNAVAILABLE
    );
    fake.assert_nothing_left();
}

#[tokio::test]
async fn an_unconfirmed_publish_removes_the_record_and_the_video() {
    let fake = Fake::failing_at(Step::Publish, 0);
    assert_eq!(
        status(run(&fake, upload(), body()).await),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(fake.world().calls.get(&Step::Create), Some(&1));
    fake.assert_nothing_left();
}
