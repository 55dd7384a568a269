-- The notifier's log of account emails (confirmation links, "you already have an account"),
-- published by auth on the account-emails channel (components/notifier/src/account_sent_log.rs).
-- Pub/sub delivers each message once to every subscribed notifier replica: the primary key lets
-- exactly one of them claim and send it. Nothing redelivers a lost one; the person asks auth for
-- another link, which is a new message.
CREATE TABLE account_emails_sent (
    message_id   CHAR(36)     CHARACTER SET ascii NOT NULL,
    -- 'confirm' or 'already_registered' (contracts' AccountEmailKind).
    kind         VARCHAR(32)  CHARACTER SET ascii NOT NULL,
    recipient    VARCHAR(254) NOT NULL,
    -- 'sending' while the mail API call is in flight; then 'sent', 'rejected' (refused for good)
    -- or 'failed' (the mail API could not take it; the email is lost).
    state        VARCHAR(16)  CHARACTER SET ascii NOT NULL,
    claim_token  CHAR(36)     CHARACTER SET ascii NOT NULL,
    provider_id  VARCHAR(255) NULL,
    detail       VARCHAR(512) NULL,
    claimed_at   TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    sent_at      TIMESTAMP(3) NULL,
    PRIMARY KEY (message_id),
    KEY account_emails_recipient (recipient, claimed_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
