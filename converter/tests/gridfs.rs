//! The converter's own GridFS chunk I/O against the MongoDB-wire server: files spanning several
//! chunks read back exactly through the seeking reader and the byte-range stream, the held-back
//! first chunk is patched, and unfinished files leave no chunks.

use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use mongodb::bson::doc;
use vid2mp3_converter::gridfs::{self, Bucket, CHUNK_SIZE, GridFsReader};
use vid2mp3_test_support::MongoDatabase;

fn data(len: usize) -> Vec<u8> {
    // Not periodic in the chunk size, so a chunk read at the wrong offset shows.
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_across_chunks_read_back_exactly() {
    let mongo = MongoDatabase::create().await.unwrap();
    let bucket = Bucket::new(&mongo.database(), "mp3s");
    bucket.ensure_indexes().await.unwrap();
    let chunk = CHUNK_SIZE as usize;
    let mut expected = data(2 * chunk + 12_345);
    let mut writer = bucket.writer(true);
    // Odd-sized writes that straddle chunk boundaries.
    for piece in expected.chunks(100_003) {
        writer.write(piece).await.unwrap();
    }
    // The first chunk is still in memory: the header can be patched in.
    writer.patch_start(b"HEADER").unwrap();
    expected[..6].copy_from_slice(b"HEADER");
    let id = writer.id();
    // Chunk 1 is inserted in the background; chunk 0 is held back and the tail still buffered,
    // so it is the only one that may appear.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while bucket.count_chunks(id).await.unwrap() < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "chunk 1 was never written"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(bucket.count_chunks(id).await.unwrap(), 1);
    assert!(
        bucket.file(id).await.unwrap().is_none(),
        "not visible before close"
    );
    let file = writer.close("a.mp3", doc! {"job_id": "j1"}).await.unwrap();
    assert_eq!(file.length, expected.len() as u64);
    assert_eq!(bucket.count_chunks(id).await.unwrap(), 3);
    assert_eq!(
        bucket.find_by_metadata("job_id", "j1").await.unwrap(),
        Some(file.clone())
    );

    // Byte ranges inside one chunk, across one and across two boundaries, the whole file.
    for (start, end) in [
        (0, 99),
        (chunk as u64 - 10, chunk as u64 + 10),
        (5, 2 * chunk as u64 + 100),
        (0, expected.len() as u64 - 1),
    ] {
        let got = gridfs::collect(bucket.byte_range(file.clone(), start, end))
            .await
            .unwrap();
        assert_eq!(
            got,
            expected[start as usize..=end as usize],
            "{start}-{end}"
        );
    }

    // The synchronous reader, seeking around as a demuxer does.
    let expected_for_reader = expected.clone();
    let handle = tokio::runtime::Handle::current();
    let reader_bucket = bucket.clone();
    let reader_file = file.clone();
    let fetches = tokio::task::spawn_blocking(move || {
        let mut reader = GridFsReader::new(reader_bucket, reader_file, handle);
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        assert_eq!(all, expected_for_reader);
        let mut buf = [0u8; 20];
        reader.seek(SeekFrom::End(-10)).unwrap();
        assert_eq!(reader.read(&mut buf).unwrap(), 10);
        assert_eq!(
            buf[..10],
            expected_for_reader[expected_for_reader.len() - 10..]
        );
        reader.seek(SeekFrom::Start(chunk as u64 - 5)).unwrap();
        reader.read_exact(&mut buf).unwrap();
        assert_eq!(buf[..], expected_for_reader[chunk - 5..chunk + 15]);
        // Small reads inside one chunk cost no round trips.
        let before = reader.fetches();
        reader.seek(SeekFrom::Start(chunk as u64 + 100)).unwrap();
        for _ in 0..100 {
            reader.read_exact(&mut buf[..4]).unwrap();
        }
        assert_eq!(reader.fetches(), before);
        assert!(reader.seek(SeekFrom::Current(-1_000_000_000)).is_err());
        reader.fetches()
    })
    .await
    .unwrap();
    assert!(fetches <= 6, "{fetches} chunk fetches");

    assert!(bucket.delete(id).await.unwrap());
    assert_eq!(bucket.count_chunks(id).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_files_leave_no_chunks() {
    let mongo = MongoDatabase::create().await.unwrap();
    let bucket = Bucket::new(&mongo.database(), "videos");
    let big = data(3 * CHUNK_SIZE as usize);

    let mut aborted = bucket.writer(false);
    aborted.write(&big).await.unwrap();
    let id = aborted.id();
    // At most the last chunk's insert is still running.
    assert!(bucket.count_chunks(id).await.unwrap() >= 2);
    aborted.abort().await.unwrap();
    assert_eq!(bucket.count_chunks(id).await.unwrap(), 0);

    // Dropped half way (its task cancelled): the chunks are removed in the background.
    let mut dropped = bucket.writer(false);
    dropped.write(&big).await.unwrap();
    let id = dropped.id();
    drop(dropped);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while bucket.count_chunks(id).await.unwrap() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "chunks of a dropped writer stayed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let files = mongo
        .database()
        .collection::<mongodb::bson::Document>("videos.files")
        .count_documents(doc! {})
        .await
        .unwrap();
    assert_eq!(files, 0);
}

/// What symphonia's MP4 reader does at each chunk boundary while walking interleaved audio and
/// video: read a little past the boundary, seek back a few KiB, read forward again. Each chunk
/// must still be fetched once, not once per crossing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_back_and_forth_across_a_boundary_fetches_each_chunk_once() {
    let mongo = MongoDatabase::create().await.unwrap();
    let bucket = Bucket::new(&mongo.database(), "videos");
    bucket.ensure_indexes().await.unwrap();
    let chunk = CHUNK_SIZE as usize;
    let chunks = 5;
    let expected = data(chunks * chunk - 777);
    let mut writer = bucket.writer(false);
    writer.write(&expected).await.unwrap();
    let file = writer.close("v.mp4", doc! {}).await.unwrap();

    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut reader = GridFsReader::new(bucket, file, handle);
        let mut buf = [0u8; 1024];
        for boundary in (1..chunks).map(|k| k * chunk) {
            for at in [
                boundary - 6_000,
                boundary + 1_500,
                boundary - 4_000,
                boundary + 2_000,
            ] {
                reader.seek(SeekFrom::Start(at as u64)).unwrap();
                reader.read_exact(&mut buf).unwrap();
                assert_eq!(buf[..], expected[at..at + buf.len()], "1 KiB at {at}");
            }
        }
        assert_eq!(reader.fetches(), chunks as u64, "each chunk fetched once");
    })
    .await
    .unwrap();
}
