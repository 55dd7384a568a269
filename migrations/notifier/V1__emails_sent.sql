-- The notifier's log of emails: at most one per job and outcome, however often an event arrives.
CREATE TABLE emails_sent (
    job_id       CHAR(36)     CHARACTER SET ascii NOT NULL,
    -- 'done' or 'failed'.
    kind         VARCHAR(16)  CHARACTER SET ascii NOT NULL,
    -- The event that caused the email, for tracing a delivery back to the queue.
    event_id     CHAR(36)     CHARACTER SET ascii NOT NULL,
    recipient    VARCHAR(254) NOT NULL,
    -- 'sending' while the mail API call is in flight, 'sent' once the provider accepted it.
    state        VARCHAR(16)  CHARACTER SET ascii NOT NULL,
    -- The provider's id for the message, when it gives one.
    provider_id  VARCHAR(255) NULL,
    claimed_at   TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    sent_at      TIMESTAMP(3) NULL,
    PRIMARY KEY (job_id, kind)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
