-- Who owns which job: the one fact the gateway is the source of truth for. Processing state
-- (status, progress, mp3) belongs to the converter and is never copied here.
CREATE TABLE jobs (
    id            CHAR(36)     CHARACTER SET ascii NOT NULL,
    -- auth's user id; no foreign key, because users live in auth's database.
    owner_id      CHAR(36)     CHARACTER SET ascii NOT NULL,
    original_name VARCHAR(255) NOT NULL,
    content_type  VARCHAR(127) CHARACTER SET ascii NOT NULL,
    created_at    TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    -- NULL while the upload is still streaming to storage; a row that never gets one is an
    -- abandoned upload and is removed, so clients never see a job that has no video.
    stored_at     TIMESTAMP(3) NULL,
    PRIMARY KEY (id),
    -- "My jobs, newest first", paginated by (created_at, id).
    KEY jobs_owner_newest (owner_id, created_at, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
