-- Email confirmation (components/auth/src/confirmations.rs). A new account is unconfirmed until
-- its owner opens the link from its confirmation email; until then it cannot log in, so the
-- platform sends the address nothing else.
ALTER TABLE users
    ADD COLUMN email_confirmed_at TIMESTAMP(3) NULL AFTER password_hash;

-- Accounts made before confirmation existed have been receiving mail all along: they count as
-- confirmed (locking them out would cut their owners off from their mp3s).
UPDATE users SET email_confirmed_at = created_at WHERE email_confirmed_at IS NULL;

-- One row per confirmation email. Only a SHA-256 of the token is kept: a copy of this table
-- confirms nothing. Each row carries the password hash chosen in the sign-up that sent it, so the
-- password that holds after confirming is the one chosen together with the link that was opened.
CREATE TABLE email_confirmations (
    token_sha256  CHAR(64)     CHARACTER SET ascii NOT NULL,
    user_id       CHAR(36)     CHARACTER SET ascii NOT NULL,
    password_hash VARCHAR(255) CHARACTER SET ascii NOT NULL,
    created_at    TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    expires_at    TIMESTAMP(3) NOT NULL,
    -- Set once, by the request that used the token (the claim that makes it single-use).
    used_at       TIMESTAMP(3) NULL,
    used_by       CHAR(36)     CHARACTER SET ascii NULL,
    PRIMARY KEY (token_sha256),
    KEY email_confirmations_user (user_id),
    KEY email_confirmations_expiry (expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = ascii COLLATE = ascii_bin;
