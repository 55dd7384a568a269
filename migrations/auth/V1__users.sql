-- auth's accounts. Passwords are never stored: only argon2id hashes in PHC string form.
CREATE TABLE users (
    id            CHAR(36)     CHARACTER SET ascii NOT NULL,
    -- Normalized (trimmed, lower-cased) at sign-up, so uniqueness is byte-wise.
    email         VARCHAR(254) NOT NULL,
    password_hash VARCHAR(255) CHARACTER SET ascii NOT NULL,
    created_at    TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (id),
    UNIQUE KEY users_email (email)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
