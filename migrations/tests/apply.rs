//! Migrations against a real MariaDB: applied once, recorded, and an edited one refused.

use mysql_async::prelude::Queryable;
use refinery::Migration;
use vid2mp3_migrations::{MigrateError, Service, apply, apply_migrations};
use vid2mp3_test_support::MySqlDatabase;

async fn tables(db: &MySqlDatabase) -> anyhow::Result<Vec<String>> {
    let mut conn = db.pool()?.get_conn().await?;
    Ok(conn
        .exec("SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name", (db.name(),))
        .await?)
}

#[tokio::test]
async fn each_service_gets_its_own_tables_and_a_second_run_changes_nothing() -> anyhow::Result<()> {
    for (service, service_tables) in [
        (Service::Auth, &["users", "email_confirmations"][..]),
        (Service::Gateway, &["jobs", "account_deletions"][..]),
        (
            Service::Notifier,
            &["emails_sent", "account_emails_sent"][..],
        ),
    ] {
        let db = MySqlDatabase::create().await?;
        let first = apply(service, db.server_url(), db.name()).await?;
        assert_eq!(
            first.newly_applied.len(),
            service.migrations().len(),
            "{service:?}"
        );
        let mut expected: Vec<String> = service_tables.iter().map(|t| (*t).to_owned()).collect();
        expected.push("refinery_schema_history".to_owned());
        expected.sort();
        assert_eq!(tables(&db).await?, expected);

        let second = apply(service, db.server_url(), db.name()).await?;
        assert!(
            second.newly_applied.is_empty(),
            "{service:?} re-applied {:?}",
            second.newly_applied
        );
        assert_eq!(second.version, first.version);
    }
    Ok(())
}

#[tokio::test]
async fn an_applied_migration_that_was_edited_is_refused() -> anyhow::Result<()> {
    let db = MySqlDatabase::create().await?;
    apply(Service::Auth, db.server_url(), db.name()).await?;

    let mut edited = Service::Auth.migrations();
    let first = edited.remove(0);
    let changed = Migration::unapplied(
        &format!("V{}__{}", first.version(), first.name()),
        "CREATE TABLE users (id INT PRIMARY KEY)",
    )?;
    edited.insert(0, changed);

    let refused = apply_migrations(&edited, db.server_url(), db.name()).await;
    match refused {
        Err(error @ MigrateError::ChangedAfterApplied { .. }) => {
            let message = error.to_string();
            assert!(message.contains("V1__users"), "{message}");
            assert!(message.contains("new migration"), "{message}");
        }
        other => panic!("an edited migration was not refused: {other:?}"),
    }
    // Nothing was changed by the refused run.
    let mut conn = db.pool()?.get_conn().await?;
    let columns: Vec<String> = conn
        .exec("SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = 'users' ORDER BY ordinal_position", (db.name(),))
        .await?;
    assert_eq!(
        columns,
        [
            "id",
            "email",
            "password_hash",
            "email_confirmed_at",
            "created_at"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn a_migration_this_build_does_not_know_is_refused() -> anyhow::Result<()> {
    let db = MySqlDatabase::create().await?;
    let mut newer = Service::Notifier.migrations();
    newer.push(Migration::unapplied(
        "V999__from_the_future",
        "CREATE TABLE later (id INT)",
    )?);
    apply_migrations(&newer, db.server_url(), db.name()).await?;

    let older = apply(Service::Notifier, db.server_url(), db.name()).await;
    assert!(
        matches!(older, Err(MigrateError::UnknownApplied { .. })),
        "{older:?}"
    );
    Ok(())
}

#[tokio::test]
async fn bad_database_names_and_urls_are_refused_before_touching_the_server() {
    let bad_name = apply(
        Service::Auth,
        "mysql://vid2mp3:vid2mp3@127.0.0.1:3306",
        "x`; DROP DATABASE mysql",
    )
    .await;
    assert!(
        matches!(bad_name, Err(MigrateError::InvalidDatabaseName(_))),
        "{bad_name:?}"
    );
    let bad_url = apply(Service::Auth, "postgres://nope", "vid2mp3_auth").await;
    assert!(
        matches!(bad_url, Err(MigrateError::InvalidUrl(_))),
        "{bad_url:?}"
    );
}

/// Email confirmation came after accounts: the accounts already there count as confirmed (their
/// owners keep their access), new ones start unconfirmed.
#[tokio::test]
async fn accounts_from_before_email_confirmation_stay_usable() -> anyhow::Result<()> {
    let db = MySqlDatabase::create().await?;
    let before = &Service::Auth.migrations()[..1];
    apply_migrations(before, db.server_url(), db.name()).await?;
    let pool = db.pool()?;
    let mut conn = pool.get_conn().await?;
    conn.query_drop(
        "INSERT INTO users (id, email, password_hash) \
         VALUES ('0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d11', 'old@example.com', '$argon2id$old')",
    )
    .await?;
    apply(Service::Auth, db.server_url(), db.name()).await?;
    conn.query_drop(
        "INSERT INTO users (id, email, password_hash) \
         VALUES ('0191e3f0-6c1e-7c4e-9a51-2b7f0c0a9d12', 'new@example.com', '$argon2id$new')",
    )
    .await?;
    let rows: Vec<(String, String, bool)> = conn
        .query(
            "SELECT email, password_hash, email_confirmed_at IS NOT NULL FROM users ORDER BY email",
        )
        .await?;
    assert_eq!(
        rows,
        vec![
            ("new@example.com".into(), "$argon2id$new".into(), false),
            ("old@example.com".into(), "$argon2id$old".into(), true),
        ]
    );
    drop(conn);
    pool.disconnect().await?;
    Ok(())
}

/// A service's own account has no DDL rights: migrating with it is refused, the error names the
/// account that migrates, and the schema is left as it was.
#[tokio::test]
async fn a_service_account_is_refused_saying_which_account_migrates_and_nothing_is_lost()
-> anyhow::Result<()> {
    let db = MySqlDatabase::create().await?;
    apply(Service::Notifier, db.server_url(), db.name()).await?;
    let before = tables(&db).await?;

    // The database's own account, as the notifier has it: rows only, no DDL.
    let (service_server, _) = db
        .service_url()
        .rsplit_once('/')
        .expect("a URL with a database");
    let refused = apply(Service::Notifier, service_server, db.name()).await;
    match refused {
        Err(error @ MigrateError::Refused { .. }) => {
            let message = error.to_string();
            assert!(message.contains("vid2mp3_migrate"), "{message}");
            assert!(message.contains("Access denied"), "{message}");
            // The password never shows.
            let password = service_server
                .rsplit_once('@')
                .and_then(|(creds, _)| creds.rsplit_once(':'))
                .map(|(_, p)| p)
                .expect("a password");
            assert!(!message.contains(password), "{message}");
        }
        other => panic!("expected a refusal naming the migrations' account, got {other:?}"),
    }
    assert_eq!(tables(&db).await?, before);
    Ok(())
}
