-- Claims that tell one delivery attempt from another (components/notifier/src/sent_log.rs).
-- The same event can be handled twice at once (the runtime runs messages concurrently, and the
-- relay republishes when an ack is slow), and both carry the same event_id, so each attempt
-- claims the email with a token of its own: the row is "ours" only while it holds our token.
-- state is now 'sending', 'sent' or 'rejected' (the provider refused the email for good).
ALTER TABLE emails_sent
    ADD COLUMN claim_token   CHAR(36)     CHARACTER SET ascii NULL AFTER state,
    -- How many attempts have claimed this email: more than 1 means a stale claim was taken over.
    ADD COLUMN send_attempts INT UNSIGNED NOT NULL DEFAULT 1 AFTER claim_token,
    -- Why the provider rejected the email, in its words.
    ADD COLUMN detail        VARCHAR(512) NULL AFTER provider_id;
