-- Accounts that are being deleted or were deleted. Tokens are checked locally by signature, so
-- a deleted account's tokens stay valid until they expire; the gateway looks its user up here
-- on every authenticated request and refuses them.
CREATE TABLE account_deletions (
    -- auth's user id (random; nothing that names a person).
    user_id    CHAR(36)    CHARACTER SET ascii NOT NULL,
    -- 'deleting' from the password check on (only the deletion itself is accepted, so an
    -- interrupted one can be finished), 'deleted' once every service has forgotten the account.
    state      VARCHAR(16) CHARACTER SET ascii NOT NULL,
    started_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (user_id)
) ENGINE = InnoDB DEFAULT CHARSET = ascii COLLATE = ascii_bin;
